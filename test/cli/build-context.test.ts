// --build-context NAME=VALUE (buildx): a directory for COPY --from=NAME and RUN --mount from=NAME, docker-image://REF
// for FROM NAME, either overriding a stage or image of the same name; errors for bad values.
import { chmod, chown, mkdir, readFile, readlink, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeProject } from "../helpers/project.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { startGitDaemon } from "../helpers/git-servers.js";
import { exec } from "../helpers/tools.js";

let dir: Awaited<ReturnType<typeof tempDir>>;
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

beforeAll(async () => {
  dir = await tempDir("build-context-");
  root = join(dir.path, "store");
  await storeWithBusybox(root);
});
afterAll(async () => {
  await dir?.cleanup();
});

const project = (name: string, dockerfile: string, files: Record<string, string> = {}) => writeProject(dir.path, name, dockerfile, files);

describe("--build-context", () => {
  it("a directory serves COPY --from=NAME and RUN --mount from=NAME, keyed by its content, filtered by its own .dockerignore", async () => {
    // Its own .dockerignore applies (the main context's does not): hidden.txt is neither copied nor mounted.
    const deps = await project("deps", "", { "lib/a.txt": "a1\n", "skip.txt": "kept\n", "hidden.txt": "h\n", ".dockerignore": "hidden.txt\n" });
    const ctx = await project(
      "app1",
      "FROM busybox:local\nCOPY --from=deps /lib /lib2\nCOPY --from=deps skip.txt /\nRUN --mount=from=deps,target=/d cat /d/lib/a.txt > /seen && ls -a /d > /listing\nCOPY --from=deps . /all/\n",
      { ".dockerignore": "skip.txt\n" },
    );
    const out = join(dir.path, "out1");
    const b = await r(["build", "--progress", "plain", "--build-context", `deps=${deps}`, "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "lib2/a.txt"), "utf8")).toBe("a1\n");
    expect(await readFile(join(out, "skip.txt"), "utf8")).toBe("kept\n");
    expect(await readFile(join(out, "seen"), "utf8")).toBe("a1\n");
    expect((await readFile(join(out, "listing"), "utf8")).split("\n")).not.toContain("hidden.txt");
    await expect(readFile(join(out, "all/hidden.txt"))).rejects.toThrow();
    expect(await readFile(join(out, "all/skip.txt"), "utf8")).toBe("kept\n");
    const again = await r(["build", "--progress", "plain", "--build-context", `deps=${deps}`, ctx]);
    expect(again.stderr.match(/CACHED/g)?.length).toBe(4);
    await writeFile(join(deps, "lib/a.txt"), "a2\n");
    const changed = await r(["build", "--progress", "plain", "--build-context", `deps=${deps}`, "-o", `type=local,dest=${out}-2`, ctx]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(await readFile(join(`${out}-2`, "seen"), "utf8")).toBe("a2\n");
  });

  it("overrides a stage of the same name (buildx: the stage is overwritten)", async () => {
    const alt = await project("alt", "", { who: "context\n" });
    const ctx = await project("app2", "FROM busybox:local AS deps\nRUN echo stage > /who\nFROM busybox:local\nCOPY --from=deps /who /who\n");
    const out = join(dir.path, "out2");
    const b = await r(["build", "--progress", "plain", "--build-context", `deps=${alt}`, "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "who"), "utf8")).toBe("context\n");
    // The overridden stage is not built.
    expect(b.stderr).not.toContain("RUN echo stage");
  });

  it("replaces the target stage of the same name: none of its instructions run, the image is the context", async () => {
    const alt = await project("alt-target", "", { who: "context\n" });
    const ctx = await project("app-target", "FROM busybox:local AS deps\nRUN echo stage > /who\nENV FROM_STAGE=1\n");
    const out = join(dir.path, "out-target");
    const b = await r(["build", "--progress", "plain", "--build-context", `deps=${alt}`, "-t", "replaced:1", "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).not.toContain("RUN echo stage");
    expect(await readFile(join(out, "who"), "utf8")).toBe("context\n");
    // dockerfile2llb keeps a dispatched directory context's zero image: no PATH, no WorkingDir, no ENV of the stage.
    const image = JSON.parse((await r(["inspect", "replaced:1"])).stdout)[0].Config;
    expect(image.config).toEqual({});
    expect(image.rootfs.diff_ids).toHaveLength(1);
    // An image context replaces it the same way, with the image's own config.
    const img = await r(["build", "--build-context", "deps=docker-image://busybox:local", "-t", "replaced:2", ctx]);
    expect(img.code, img.stderr).toBe(0);
    const image2 = JSON.parse((await r(["inspect", "replaced:2"])).stdout)[0].Config;
    expect(image2.config.Env).not.toContain("FROM_STAGE=1");
    expect(image2.rootfs.diff_ids).toEqual(JSON.parse((await r(["inspect", "busybox:local"])).stdout)[0].Config.rootfs.diff_ids);
  });

  it("a git URL is fetched as a directory, which its .dockerignore does not filter (BuildKit reads it for local ones only)", async () => {
    const work = await project("gitwork", "", { "a.txt": "from git\n", "ignored.txt": "still here\n", ".dockerignore": "ignored.txt\n" });
    const git = (cwd: string, ...args: string[]) => exec("git", ["-C", cwd, "-c", "user.name=t", "-c", "user.email=t@t", ...args]);
    await git(work, "init", "-q", "-b", "main");
    await git(work, "add", "-A");
    await git(work, "commit", "-qm", "one");
    const repos = join(dir.path, "repos");
    await mkdir(repos, { recursive: true });
    await git(repos, "clone", "-q", "--bare", work, "repo.git");
    const daemon = await startGitDaemon(repos);
    try {
      const ctx = await project("app-git", "FROM busybox:local\nCOPY --from=src a.txt ignored.txt /got/\n");
      const out = join(dir.path, "out-git");
      const b = await r(["build", "--build-context", `src=git://127.0.0.1:${daemon.port}/repo.git#main`, "-o", `type=local,dest=${out}`, ctx]);
      expect(b.code, b.stderr).toBe(0);
      expect(await readFile(join(out, "got/a.txt"), "utf8")).toBe("from git\n");
      expect(await readFile(join(out, "got/ignored.txt"), "utf8")).toBe("still here\n");
    } finally {
      await daemon.close();
    }
  });

  it("docker-image://REF stands for FROM NAME and COPY --from=NAME", async () => {
    const ctx = await project("app3", "FROM base\nCOPY --from=tools /bin/busybox /tools-busybox\nRUN test -x /tools-busybox && echo ok > /ok\n");
    const out = join(dir.path, "out3");
    const b = await r([
      "build",
      "--build-context",
      "base=docker-image://busybox:local",
      "--build-context",
      "tools=docker-image://busybox:local",
      "-o",
      `type=local,dest=${out}`,
      ctx,
    ]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "ok"), "utf8")).toBe("ok\n");
  });

  it("bad values are clear errors before the build", async () => {
    const ctx = await project("app4", "FROM busybox:local\n");
    for (const [value, re] of [
      ["noequals", /--build-context "noequals": expected NAME=VALUE \[BAD_FLAG_VALUE\]/],
      [`x=${join(dir.path, "missing")}`, /--build-context x=.*missing is not a directory \[BAD_FLAG_VALUE\]/],
      ["x=docker-image://Bad:Ref", /is not an image reference \[BAD_FLAG_VALUE\]/],
      ["x=ftp://host/x.tar", /cannot fetch ftp:\/\/ URLs \[BAD_CONTEXT\]/],
    ] as const) {
      const b = await r(["build", "--build-context", value, ctx]);
      expect(b.code, b.stderr).not.toBe(0);
      expect(b.stderr).toMatch(re);
      expect(b.stderr).not.toMatch(/this is a bug/);
    }
  });

  it("FROM a directory context: its files as one layer (modes, mtimes, links; owners 0:0; its own .dockerignore) over scratch's config", async () => {
    const deps = await project("deps5", "", { "bin/tool": "#!/bin/sh\n", "secret.key": "k", "skip.log": "x", ".dockerignore": "*.log\n" });
    await chmod(join(deps, "bin/tool"), 0o750);
    await chmod(join(deps, "secret.key"), 0o600);
    await chown(join(deps, "secret.key"), 1234, 1234);
    await utimes(join(deps, "bin/tool"), 1_000_000, 1_000_000);
    await symlink("bin/tool", join(deps, "link"));
    const ctx = await project("app5", "FROM deps\nCOPY --from=busybox:local /bin/busybox /bin/sh\nRUN ls -ln /secret.key > /owners\nENV X=1\n");
    const out = join(dir.path, "out5");
    const b = await r(["build", "--progress", "plain", "--build-context", `deps=${deps}`, "-t", "fromctx:1", "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect((await stat(join(out, "bin/tool"))).mode & 0o7777).toBe(0o750);
    expect((await stat(join(out, "bin/tool"))).mtimeMs).toBe(1_000_000_000);
    expect((await stat(join(out, "secret.key"))).mode & 0o7777).toBe(0o600);
    expect(await readlink(join(out, "link"))).toBe("bin/tool");
    await expect(stat(join(out, "skip.log"))).rejects.toThrow();
    // The RUN sees root-owned files, as BuildKit's local source sends them.
    expect(await readFile(join(out, "owners"), "utf8")).toMatch(/^-rw------- +1 0 +0 /);
    const image = JSON.parse((await r(["inspect", "fromctx:1"])).stdout)[0].Config;
    expect(image.config).toEqual({ Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "X=1"], WorkingDir: "/" });
    expect(image.rootfs.diff_ids).toHaveLength(3);
    expect(image.history[0]).toMatchObject({ created_by: "local source for context:deps", comment: "buildkit.exporter.image.v0" });
    expect(image.history[0].empty_layer).toBeUndefined();
    expect(image.history).toHaveLength(4);
    // Keyed by content: a rebuild hits, a changed file misses.
    const again = await r(["build", "--progress", "plain", "--build-context", `deps=${deps}`, ctx]);
    expect(again.stderr.match(/CACHED/g)?.length).toBe(2);
    await writeFile(join(deps, "secret.key"), "k2");
    const changed = await r(["build", "--progress", "plain", "--build-context", `deps=${deps}`, ctx]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).not.toMatch(/CACHED/);
  });
});
