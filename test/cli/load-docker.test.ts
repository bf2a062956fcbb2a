// --load (issue 16) through the real CLI: the image streamed into `docker load`, and a clear error before the build
// when there is no docker CLI or no engine. The streaming is checked with a `docker` script on PATH that keeps what
// it is given (and a real unix socket as DOCKER_HOST); a running Docker daemon, when there is one, gets the real load.
import { chmod, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { exec, requireTool } from "../helpers/tools.js";
import { startDockerEngine } from "../helpers/docker-engine.js";

const run = promisify(execFile);
let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let ctx: string;
const r = (args: string[], env: NodeJS.ProcessEnv = process.env) => tsbuild([...args, "--root", root], { env });

beforeAll(async () => {
  await requireTool("docker");
  dir = await tempDir("tsbuild-load-");
  root = join(dir.path, "store");
  ctx = join(dir.path, "ctx");
  await mkdir(ctx);
  await writeFile(join(ctx, "Dockerfile"), "FROM scratch\nCOPY a /a\n");
  await writeFile(join(ctx, "a"), "loaded\n");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("--load", () => {
  it("without a Docker engine (DOCKER_HOST at a missing socket): a clear error before the build", async () => {
    const res = await r(["build", "--progress=plain", "--load", "-t", "load:1", ctx], { ...process.env, DOCKER_HOST: "unix:///nonexistent.sock" });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain("--load: no Docker engine is running at unix:///nonexistent.sock (/nonexistent.sock does not exist) [NO_DOCKER]");
    expect(res.stderr).toContain("hint: start the Docker daemon");
    expect(res.stderr).not.toContain("COPY a /a");
    expect(res.stderr).not.toContain("this is a bug");
  });

  it("without the docker CLI on PATH: a clear error naming the package", async () => {
    const empty = join(dir.path, "empty-bin");
    await mkdir(empty, { recursive: true });
    const res = await r(["build", "--load", ctx], { ...process.env, PATH: empty });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain("--load needs the docker CLI, which is not on PATH [NO_DOCKER]");
    expect(res.stderr).toContain("apt-get install -y docker.io");
  });

  it("streams a docker-archive of the tagged image into `docker load` (a recording docker on PATH)", async () => {
    const bin = join(dir.path, "fake-bin");
    await mkdir(bin, { recursive: true });
    const got = join(dir.path, "docker-load-stdin.tar");
    await writeFile(join(bin, "docker"), `#!/bin/sh\n[ "$1" = load ] || exit 3\ncat > "${got}"\necho "Loaded image: load:2"\n`);
    await chmod(join(bin, "docker"), 0o755);
    const sock = join(dir.path, "docker.sock");
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      const res = await r(["build", "--progress=plain", "--load", "-t", "load:2", ctx], {
        ...process.env,
        PATH: `${bin}:${process.env.PATH}`,
        DOCKER_HOST: `unix://${sock}`,
      });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toContain(`loaded into docker (unix://${sock}): Loaded image: load:2`);
      const info = JSON.parse((await exec("skopeo", ["inspect", `docker-archive:${got}:load:2`])).stdout);
      expect(info.Layers).toHaveLength(1);
      expect((await exec("tar", ["-xOf", got, "manifest.json"])).stdout).toContain('"RepoTags":["load:2"]');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("a docker load that fails reports docker's own message", async () => {
    const bin = join(dir.path, "failing-bin");
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, "docker"), `#!/bin/sh\ncat > /dev/null\necho "Error response from daemon: no space left" >&2\nexit 1\n`);
    await chmod(join(bin, "docker"), 0o755);
    const sock = join(dir.path, "docker2.sock");
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      const res = await r(["build", "--load", ctx], { ...process.env, PATH: `${bin}:${process.env.PATH}`, DOCKER_HOST: `unix://${sock}` });
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain("--load: docker load");
      expect(res.stderr).toContain("Error response from daemon: no space left [DOCKER_LOAD_FAILED]");
      expect(res.stderr).not.toContain("this is a bug");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("loads into a real Docker engine (docker image inspect sees it); the host's network is left alone", async () => {
    const links = async () => (await readdir("/sys/class/net")).sort();
    const before = await links();
    const engine = await startDockerEngine(join(dir.path, "engine"));
    try {
      const env = { ...process.env, DOCKER_HOST: engine.host };
      const res = await r(["build", "--load", "-t", "tsbuild-load-test:1", ctx], env);
      expect(res.code, res.stderr).toBe(0);
      const { stdout } = await run("docker", ["image", "inspect", "tsbuild-load-test:1"], { env });
      expect(JSON.parse(stdout)[0].RepoTags).toContain("tsbuild-load-test:1");
    } finally {
      await engine.stop();
    }
    expect(await links()).toEqual(before);
  });

  it("is in build --help", async () => {
    expect((await tsbuild(["build", "--help"])).stdout).toContain("--load");
    expect(await readFile(join(ctx, "a"), "utf8")).toBe("loaded\n");
  });
});
