// End to end through the CLI: build the fixtures, inspect them, export them, and validate with skopeo and umoci.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile, readdir, stat, lstat, readlink, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { tsbuild, tempDir, REPO } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[], env?: NodeJS.ProcessEnv) => tsbuild([...args, "--root", root], env ? { env: { ...process.env, ...env } } : {});

async function inspect(name: string) {
  const res = await r(["inspect", name]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout)[0];
}

async function unpack(image: string): Promise<string> {
  const layout = join(dir.path, `oci-${image.replace(/\W/g, "_")}`);
  const res = await r([
    "build",
    "-q",
    "--output",
    `type=oci,dest=${layout},tar=false`,
    "-t",
    image,
    join(REPO, image.startsWith("hello") ? "fixtures/hello" : "fixtures/example"),
  ]);
  expect(res.code, res.stderr).toBe(0);
  const bundle = join(dir.path, `bundle-${image.replace(/\W/g, "_")}`);
  const tag = image.split(":")[1] ?? "latest";
  await exec("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle]);
  return join(bundle, "rootfs");
}

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  const archive = await makeBusyboxArchive(dir.path);
  const loaded = await r(["load", "-i", archive]);
  expect(loaded.code, loaded.stderr).toBe(0);
  expect(loaded.stdout).toContain("busybox:local");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("hello: FROM scratch, COPY, metadata", () => {
  it("builds, lists, shows history and inspects", async () => {
    const res = await r(["-t", "hello:1.0", join(REPO, "fixtures/hello")]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/writing image sha256:[a-f0-9]{64} done/);

    const images = await r(["images"]);
    expect(images.stdout).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/m);
    expect(images.stdout).toMatch(/^hello\s+1\.0\s+[a-f0-9]{12}\s+.*ago\s+\d/m);

    const info = await inspect("hello:1.0");
    expect(info.RepoTags).toEqual(["hello:1.0"]);
    const c = info.Config.config;
    expect(c.Env).toEqual(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello, world", "APP_HOME=/app"]);
    expect(c.WorkingDir).toBe("/app");
    expect(c.ExposedPorts).toEqual({ "8080/tcp": {} });
    expect(c.Cmd).toEqual(["/usr/local/bin/hello"]);
    expect(c.Labels["org.opencontainers.image.title"]).toBe("hello");
    expect(info.Config.rootfs.diff_ids).toHaveLength(3); // WORKDIR, COPY, COPY
    expect(info.Manifest.layers).toHaveLength(3);

    const hist = await r(["history", "--no-trunc", "hello:1.0"]);
    const rows = hist.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(rows[1]).toContain('CMD ["/usr/local/bin/hello"]');
    expect(rows.some((l) => /COPY hello\.txt \.\/ # buildkit\s+[\d.]+k?B\s+buildkit\.dockerfile\.v0/.test(l))).toBe(true);
    expect(rows.some((l) => l.includes("ENV GREETING=hello, world APP_HOME=/app") && /\s0B\s/.test(l))).toBe(true);
    expect(rows).toHaveLength(1 + 7); // header + LABEL ENV WORKDIR COPY COPY EXPOSE CMD
  });

  it("tags and removes names", async () => {
    expect((await r(["tag", "hello:1.0", "hello:latest"])).code).toBe(0);
    expect((await r(["images"])).stdout).toMatch(/^hello\s+latest/m);
    const rm = await r(["rmi", "hello:latest"]);
    expect(rm.stdout).toBe("Untagged: hello:latest\n");
    expect((await r(["images"])).stdout).not.toMatch(/^hello\s+latest/m);
    expect((await r(["images"])).stdout).toMatch(/^hello\s+1\.0/m);
  });

  it("saves a docker-archive that skopeo reads", async () => {
    const file = join(dir.path, "hello.tar");
    const res = await r(["save", "-o", file, "hello:1.0"]);
    expect(res.code, res.stderr).toBe(0);
    const { stdout } = await exec("skopeo", ["inspect", `docker-archive:${file}`]);
    const info = JSON.parse(stdout);
    expect(info.Layers).toHaveLength(3);
    expect(info.Env).toContain("GREETING=hello, world");
    const { stdout: raw } = await exec("skopeo", ["inspect", "--config", `docker-archive:${file}`]);
    expect(JSON.parse(raw).config.Cmd).toEqual(["/usr/local/bin/hello"]);
  });

  it("exports an OCI layout tar that skopeo reads", async () => {
    const file = join(dir.path, "hello-oci.tar");
    const res = await r(["build", "-t", "hello", "--output", `type=oci,dest=${file}`, join(REPO, "fixtures/hello")]);
    expect(res.code, res.stderr).toBe(0);
    const { stdout } = await exec("skopeo", ["inspect", `oci-archive:${file}`]);
    expect(JSON.parse(stdout).Layers).toHaveLength(3);
  });

  it("unpacks with umoci to exactly the expected tree, modes and owners", async () => {
    const rootfs = await unpack("hello:oci");
    const names: string[] = [];
    const walk = async (d: string, rel: string) => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        names.push(rel + e.name + (e.isDirectory() ? "/" : ""));
        if (e.isDirectory()) await walk(join(d, e.name), rel + e.name + "/");
      }
    };
    await walk(rootfs, "");
    expect(names.sort()).toEqual(["app/", "app/hello.txt", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/hello"]);
    expect(await readFile(join(rootfs, "app/hello.txt"), "utf8")).toBe("hello, world\n");
    const bin = await stat(join(rootfs, "usr/local/bin/hello"));
    expect(bin.mode & 0o7777).toBe(0o755);
    expect(bin.uid).toBe(0);
    expect((await stat(join(rootfs, "app/hello.txt"))).mode & 0o7777).toBe(0o644);
  });
});

describe("example: multi-stage on a local busybox base", () => {
  it("builds with COPY --from and --chown by name, honouring .dockerignore", async () => {
    const res = await r(["build", "-t", "example:test", "--build-arg", "VERSION=2.0", join(REPO, "fixtures/example")]);
    expect(res.code, res.stderr).toBe(0);
    const info = await inspect("example:test");
    const c = info.Config.config;
    expect(c.User).toBe("app");
    expect(c.WorkingDir).toBe("/srv/app");
    expect(c.Entrypoint).toEqual(["/usr/local/bin/run"]);
    expect(c.Cmd).toEqual(["index.txt"]);
    expect(c.Env).toContain("APP_VERSION=2.0");
    expect(c.Labels["org.opencontainers.image.version"]).toBe("2.0");
    expect(c.Healthcheck).toEqual({ Test: ["CMD-SHELL", "test -f /srv/app/index.txt"], Interval: 30e9, Timeout: 3e9 });

    const rootfs = await unpack("example:oci");
    expect(await readFile(join(rootfs, "srv/app/index.txt"), "utf8")).toBe("welcome to tsbuild\n");
    expect(await readFile(join(rootfs, "srv/app/about.txt"), "utf8")).toBe("about\n");
    expect(await readFile(join(rootfs, "srv/app/MANIFEST"), "utf8")).toBe("./about.txt\n./config/config.json\n./index.txt\n");
    expect((await readFile(join(rootfs, "srv/app/COUNT"), "utf8")).trim()).toBe("3");
    await expect(stat(join(rootfs, "srv/app/scratch.tmp"))).rejects.toThrow();
    const cfg = await stat(join(rootfs, "srv/app/config/config.json"));
    expect([cfg.uid, cfg.gid]).toEqual([1000, 1000]);
    const run = await stat(join(rootfs, "usr/local/bin/run"));
    expect(run.mode & 0o777).toBe(0o755);
    expect((await lstat(join(rootfs, "bin/sh"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(rootfs, "bin/sh"))).toMatch(/busybox$/);
    expect((await stat(join(rootfs, "tmp"))).mode & 0o7777).toBe(0o1777);
  });

  it("<Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore", async () => {
    const p = join(dir.path, "ignore-proj");
    await mkdir(join(p, "build"), { recursive: true });
    await writeFile(join(p, "a.txt"), "a");
    await writeFile(join(p, "b.txt"), "b");
    await writeFile(join(p, ".dockerignore"), "a.txt\n");
    await writeFile(join(p, "build/app.Dockerfile"), "FROM scratch\nCOPY *.txt /\n");
    await writeFile(join(p, "build/app.Dockerfile.dockerignore"), "b.txt\n");
    const out = join(p, "out");
    const res = await r(["build", "-f", join(p, "build/app.Dockerfile"), "-o", `type=local,dest=${out}`, p]);
    expect(res.code, res.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(["a.txt"]);
  });

  it("--target builds only the named stage", async () => {
    const res = await r(["build", "-t", "assets:only", "--target", "assets", join(REPO, "fixtures/example")]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toContain("/scripts");
    expect((await inspect("assets:only")).Config.config.WorkingDir).toBe("/assets");
  });
});

describe("determinism", () => {
  it("the same inputs with SOURCE_DATE_EPOCH give identical digests", async () => {
    const a = await r(["build", "-q", "-t", "det:a", join(REPO, "fixtures/example")], { SOURCE_DATE_EPOCH: "1700000000" });
    const b = await r(["build", "-q", "-t", "det:b", join(REPO, "fixtures/example")], { SOURCE_DATE_EPOCH: "1700000000" });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect((await inspect("det:a")).ManifestDigest).toBe((await inspect("det:b")).ManifestDigest);
    expect((await inspect("det:a")).Created).toBe("2023-11-14T22:13:20.000Z");
  });
});

describe("bad input: one clear message, non-zero exit, store unchanged", () => {
  const project = async (dockerfile: string, files: Record<string, string> = {}) => {
    const p = join(dir.path, `proj-${Math.random().toString(36).slice(2)}`);
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "Dockerfile"), dockerfile);
    for (const [n, c] of Object.entries(files)) {
      await mkdir(join(p, n, ".."), { recursive: true });
      await writeFile(join(p, n), c);
    }
    return p;
  };
  const refsBefore = async () => (await r(["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}"])).stdout;

  const cases: [string, () => Promise<string[]>, RegExp][] = [
    ["unknown instruction", async () => ["-t", "bad:1", await project("FROM scratch\nCOPPY a /\n")], /Dockerfile:2:1: .*COPPY/],
    ["missing COPY source", async () => ["-t", "bad:1", await project("FROM scratch\nCOPY nothere.txt /\n")], /Dockerfile:2:\d+: .*nothere\.txt/],
    // `..` is clamped at the context root, as BuildKit does: ../x is the context's x, missing here.
    ["source above the context", async () => ["-t", "bad:1", await project("FROM scratch\nCOPY ../x /\n")], /Dockerfile:2:\d+: .*"\.\.\/x" not found/],
    ["unknown --from stage", async () => ["-t", "bad:1", await project("FROM scratch\nCOPY --from=nope /a /\n")], /Dockerfile:2:\d+: .*nope/],
    [
      "stages that read each other",
      async () => ["-t", "bad:1", "--target", "a", await project("FROM scratch AS a\nCOPY --from=b /x /\nFROM scratch AS b\nCOPY --from=a /y /\n")],
      /Dockerfile:\d+:\d+: circular dependency detected on stage: [ab]/,
    ],
    [
      "COPY --from=$VAR",
      async () => ["-t", "bad:1", await project("FROM scratch AS a\nARG S=a\nFROM scratch\nCOPY --from=$S /x /\n")],
      /Dockerfile:4:\d+: variable expansion is not supported for --from/,
    ],
    ["unknown target", async () => ["-t", "bad:1", "--target", "zzz", await project("FROM scratch AS a\nENV A=1\n")], /target stage "zzz"/],
    ["bad tag", async () => ["-t", "Bad Tag::x", await project("FROM scratch\nENV A=1\n")], /Bad Tag::x/],
    ["unknown flag", async () => ["--frobnicate", "."], /unknown flag --frobnicate/],
    ["missing base image", async () => ["-t", "bad:1", await project("FROM nosuchimage:1\n")], /Dockerfile:1:1: .*nosuchimage:1/],
    [
      "missing required ssh id",
      async () => ["-t", "bad:1", await project("FROM busybox:local\nRUN --mount=type=ssh,required=true true\n")],
      /Dockerfile:2:1: RUN --mount=type=ssh,required: no SSH agent or keys were given for ssh id "default"/,
    ],
    [
      "missing required secret",
      async () => ["-t", "bad:1", await project("FROM busybox:local\nRUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok\n")],
      /Dockerfile:2:1: .*tok/,
    ],
    [
      "failing RUN",
      async () => ["-t", "bad:1", await project("FROM busybox:local\nRUN echo about to fail && exit 3\n")],
      /Dockerfile:2:1: .*exit code: 3[\s\S]*about to fail/,
    ],
    [
      "build check with # check=error=true",
      async () => ["-t", "bad:1", await project("# check=error=true\nFROM scratch\nMAINTAINER me\n")],
      /Dockerfile:3:1: 1 build check warning with # check=error=true/,
    ],
    [
      "ADD --checksum of a local file",
      async () => ["-t", "bad:1", await project("FROM scratch\nADD --checksum=sha256:00 a.tar /\n", { "a.tar": "x" })],
      /Dockerfile:2:1: ADD --checksum needs a URL or git source/,
    ],
    ["bad --output", async () => ["-o", "type=zip,dest=x", await project("FROM scratch\n")], /--output type=zip/],
    ["missing Dockerfile", async () => ["-t", "bad:1", dir.path], /cannot read Dockerfile/],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const before = await refsBefore();
      const res = await r(await args());
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(message);
      expect(res.stderr.match(/^error:/gm)).toHaveLength(1);
      expect(res.stderr).not.toMatch(/\n\s+at .*\(/); // no stack trace
      expect(await refsBefore()).toBe(before);
    });
  }

  it("load of a file that is not an archive", async () => {
    const f = join(dir.path, "not-a-tar.tar");
    await writeFile(f, "hello, this is not a tar file\n".repeat(40));
    const res = await r(["load", "-i", f]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/not-a-tar\.tar/);
  });

  it("a code frame points at the offending line", async () => {
    const p = await project("FROM scratch\nENV A=1\nFROB x\n");
    const res = await r(["build", p]);
    expect(res.stderr).toMatch(/> 3 \| FROB x\n\s+\| \^/);
  });
});
