// COPY/ADD --exclude, --parents and --link through the real CLI, as the Dockerfile reference and BuildKit define them
// (Docker 20.10 has none of the three, so there is no parity-corpus case): what lands in the image, what the cache
// key covers, and that a --link layer is the same on any base while the steps after it still follow the base.
import { execFileSync } from "node:child_process";
import { lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

interface Meta {
  "tsbuild.cache": { steps: { name: string; cached: boolean }[] };
}

let n = 0;
/** Builds `dockerfile` in a fresh project made of `files`; returns the exported rootfs, the steps' cache hits and stderr. */
async function build(
  project: string,
  dockerfile: string,
  extra: string[] = [],
): Promise<{ out: string; cached: Record<string, boolean>; stderr: string; code: number }> {
  await writeFile(join(project, "Dockerfile"), dockerfile);
  const meta = join(dir.path, `meta-${++n}.json`);
  const out = join(dir.path, `out-${n}`);
  const res = await r(["build", "--progress", "plain", "--metadata-file", meta, "--output", `type=local,dest=${out}`, ...extra, project]);
  if (res.code !== 0) return { out, cached: {}, stderr: res.stderr, code: res.code };
  const m = JSON.parse(await readFile(meta, "utf8")) as Meta;
  const cached: Record<string, boolean> = {};
  for (const s of m["tsbuild.cache"].steps) cached[s.name.replace(/^\[[^\]]*\] /, "")] = s.cached;
  return { out, cached, stderr: res.stderr, code: res.code };
}

async function ok(project: string, dockerfile: string, extra: string[] = []) {
  const res = await build(project, dockerfile, extra);
  expect(res.code, res.stderr).toBe(0);
  return res;
}

/** Every path below `base`, sorted ("dir/" for directories). */
async function list(base: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(base, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(base, p));
    if (st.isDirectory()) out.push(`${p}/`, ...(await list(base, p)));
    else out.push(p);
  }
  return out;
}

async function project(name: string, files: Record<string, string>): Promise<string> {
  const p = join(dir.path, name);
  await mkdir(p, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(join(p, rel, ".."), { recursive: true });
    if (rel.endsWith("/")) await mkdir(join(p, rel), { recursive: true });
    else await writeFile(join(p, rel), content);
  }
  return p;
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-copyflags-");
  root = await storeWithBusybox(join(dir.path, "store"));
});
afterAll(async () => {
  await dir?.cleanup();
});

const TREE = {
  "src/a.go": "a",
  "src/b.go": "b",
  "src/c.rs": "c",
  "src/notes.txt": "n",
  "src/keep.txt": "k",
  "src/vendor/lib/x.go": "x",
  "src/vendor/lib/keep.go": "kg",
  "docs/guide.md": "g",
  "docs/img/logo.png": "png",
};

describe("COPY --exclude", () => {
  it("leaves out files and directories matching the patterns (relative to each source), with ! exceptions", async () => {
    const p = await project("exclude", TREE);
    const res = await ok(
      p,
      [
        "FROM scratch",
        "COPY --exclude=*.txt --exclude=!keep.txt --exclude=vendor src /s/",
        "COPY --exclude=**/*.png . /all/",
        "ADD --exclude=vendor/lib/x.go src/ /add/",
        "COPY --exclude=* src /none/",
        "",
      ].join("\n"),
    );
    expect(await list(join(res.out, "s"))).toEqual(["a.go", "b.go", "c.rs", "keep.txt"]);
    const all = await list(join(res.out, "all"));
    expect(all).toContain("docs/img/");
    expect(all).not.toContain("docs/img/logo.png");
    expect(all).toContain("src/vendor/lib/x.go");
    expect(await list(join(res.out, "add", "vendor"))).toEqual(["lib/", "lib/keep.go"]);
    // Everything excluded: the destination exists, empty (BuildKit's testExcludedFilesOnCopy).
    expect(await list(join(res.out, "none"))).toEqual([]);
  });

  it("keys the step on the patterns and on the copied files only", async () => {
    const p = await project("exclude-key", TREE);
    const df = "FROM busybox:local\nCOPY --exclude=*.txt src /s/\nRUN ls /s > /ls\n";
    await ok(p, df);
    // An excluded file changes: still a hit.
    await writeFile(join(p, "src/notes.txt"), "changed");
    let res = await ok(p, df);
    expect(res.cached["COPY --exclude=*.txt src /s/"]).toBe(true);
    // A copied file changes: a miss.
    await writeFile(join(p, "src/a.go"), "changed");
    res = await ok(p, df);
    expect(res.cached["COPY --exclude=*.txt src /s/"]).toBe(false);
    // Another pattern: a miss, and the other files are copied.
    res = await ok(p, df.replace("*.txt", "*.go"));
    expect(res.cached["COPY --exclude=*.go src /s/"]).toBe(false);
    expect(await readFile(join(res.out, "ls"), "utf8")).toBe("c.rs\nkeep.txt\nnotes.txt\nvendor\n");
  });

  it("applies to COPY --from a stage", async () => {
    const p = await project("exclude-from", TREE);
    const res = await ok(
      p,
      ["FROM busybox:local AS b", "COPY src /data/", "FROM scratch", "COPY --from=b --exclude=*.go --exclude=vendor/ /data /d/", ""].join("\n"),
    );
    expect(await list(join(res.out, "d"))).toEqual(["c.rs", "keep.txt", "notes.txt"]);
  });
});

describe("COPY --parents", () => {
  it("recreates the source's parent directories, after the /./ pivot when there is one, with globs", async () => {
    const p = await project("parents", TREE);
    execFileSync("chmod", ["700", join(p, "src/vendor")]);
    const res = await ok(
      p,
      [
        "FROM scratch",
        "COPY --parents src/vendor/lib/x.go docs/guide.md /p/",
        "COPY --parents ./src/./vendor/lib/keep.go /pivot/",
        "COPY --parents */*.go /glob/",
        "COPY --parents ./src/./vendor /dir/",
        "",
      ].join("\n"),
    );
    expect(await list(join(res.out, "p"))).toEqual(["docs/", "docs/guide.md", "src/", "src/vendor/", "src/vendor/lib/", "src/vendor/lib/x.go"]);
    // The recreated parents take the source directories' modes (as fsutil's createParentDirs).
    expect((await lstat(join(res.out, "p/src/vendor"))).mode & 0o7777).toBe(0o700);
    expect(await list(join(res.out, "pivot"))).toEqual(["vendor/", "vendor/lib/", "vendor/lib/keep.go"]);
    expect(await list(join(res.out, "glob"))).toEqual(["src/", "src/a.go", "src/b.go"]);
    expect(await list(join(res.out, "dir"))).toEqual(["vendor/", "vendor/lib/", "vendor/lib/keep.go", "vendor/lib/x.go"]);
  });

  it("fails naming a literal source that does not exist, and works with --from and --exclude", async () => {
    const p = await project("parents-from", TREE);
    const missing = await build(p, "FROM scratch\nCOPY --parents src/nope.go /p/\n");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('"src/nope.go" not found');
    const res = await ok(
      p,
      ["FROM busybox:local AS b", "COPY . /data/", "FROM scratch", "COPY --from=b --parents --exclude=**/x.go /data/./src/vendor /d/", ""].join("\n"),
    );
    expect(await list(join(res.out, "d"))).toEqual(["src/", "src/vendor/", "src/vendor/lib/", "src/vendor/lib/keep.go"]);
  });
});

describe("COPY --link", () => {
  it("gives the same files, modes and owners as a plain COPY in the common cases", async () => {
    const p = await project("link-same", { "app/run.sh": "#!/bin/sh\n", "app/conf/c.ini": "c", "one.txt": "1" });
    execFileSync("chmod", ["755", join(p, "app/run.sh")]);
    await symlink("run.sh", join(p, "app/start"));
    const body = (link: string) =>
      [
        "FROM busybox:local",
        "WORKDIR /srv",
        `COPY ${link} app ./app/`,
        `COPY ${link} --chown=1000:1000 one.txt /opt/deep/`,
        `COPY ${link} --chown=root one.txt /root-owned.txt`,
        "",
      ].join("\n");
    const plain = await ok(p, body(""));
    const linked = await ok(p, body("--link"));
    const view = async (base: string) => {
      const out: string[] = [];
      for (const path of [...(await list(base, "srv")), ...(await list(base, "opt")), "root-owned.txt"]) {
        const st = await lstat(join(base, path.replace(/\/$/, "")));
        out.push(`${path} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? await readFile(join(base, path), "utf8") : ""}`);
      }
      return out;
    };
    expect(await view(linked.out)).toEqual(await view(plain.out));
  });

  it("refuses --chown by name (no /etc/passwd to read, as BuildKit)", async () => {
    const p = await project("link-chown", { "one.txt": "1" });
    const res = await build(p, "FROM busybox:local\nCOPY --link --chown=nobody one.txt /x\n");
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("--link --chown=nobody");
  });

  it("is reused on a new base without re-running, while the RUN after it re-runs; its layer does not depend on the base", async () => {
    const p = await project("link-base", { "app/a.txt": "A\n" });
    // Two bases: busybox, and busybox with one more layer that turns /opt into a symlink (never followed by --link).
    const base2 = await project("link-base2", {});
    await ok(base2, "FROM busybox:local\nRUN mkdir -p /elsewhere && ln -s /elsewhere /opt && echo two > /base.txt\n", ["-t", "base2:1"]);
    const df = "ARG BASE=busybox:local\nFROM $BASE\nCOPY --link app/ /opt/app/\nRUN cat /opt/app/a.txt > /out.txt; ls /elsewhere >> /out.txt 2>&1; true\n";
    const step = "COPY --link app/ /opt/app/";
    const first = await ok(p, df);
    expect(first.cached[step]).toBe(false);
    const second = await ok(p, df, ["--build-arg", "BASE=base2:1"]);
    expect(second.cached[step]).toBe(true);
    expect(second.stderr).toMatch(/COPY --link app\/ \/opt\/app\/\n#\d+ CACHED/);
    expect(Object.entries(second.cached).find(([k]) => k.startsWith("RUN"))?.[1]).toBe(false);
    // Applied like any layer: /opt is a directory holding only the copy, the base's symlink is not followed.
    expect((await lstat(join(second.out, "opt"))).isDirectory()).toBe(true);
    expect(await readFile(join(second.out, "out.txt"), "utf8")).toBe("A\n");
    expect(await readFile(join(second.out, "base.txt"), "utf8")).toBe("two\n");

    const layers = async (ref: string, base: string) => {
      // Tagged into the store (the builds above exported a directory); every step hits.
      const tagged = await r(["build", "-q", "-t", ref, "--build-arg", `BASE=${base}`, p]);
      expect(tagged.code, tagged.stderr).toBe(0);
      const res = await r(["inspect", "--format", "{{json .RootFS.Layers}}", ref]);
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout) as string[];
    };
    const l1 = await layers("link:1", "busybox:local");
    const l2 = await layers("link:2", "base2:1");
    expect(l2.length).toBe(l1.length + 1);
    // [..., COPY --link, RUN]: the same diff id on both bases, different RUN layers' parents.
    expect(l2[l2.length - 2]).toBe(l1[l1.length - 2]);
    // Back on the first base: everything hits.
    const third = await ok(p, df);
    expect(Object.values(third.cached).every(Boolean)).toBe(true);
    await rm(join(dir.path, "link-base2"), { recursive: true, force: true });
  });
});
