// Cache mounts that travel: --cache-to …,cache-mounts=true carries RUN --mount=type=cache contents beside the step
// records (a local directory, a registry), and --cache-from restores them into a store that has none, so the RUN a
// one-file change re-runs on a fresh machine finds its warm cache. A store's own cache mount is never replaced.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tsbuild, tsbuildProcess, tempDir } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { storeLayout } from "../../src/store/layout.js";

let dir: { path: string; cleanup(): Promise<void> };
let project: string;
let n = 0;

/** Builds the project into `store`, exporting the image's files to a fresh directory; returns them and stderr. */
async function buildIn(store: string, extra: string[]): Promise<{ stderr: string; out: string; file(name: string): Promise<string> }> {
  const out = join(dir.path, `out-${++n}`);
  const res = await tsbuild(["build", "--progress", "plain", "--root", store, "-o", `type=local,dest=${out}`, ...extra, project]);
  expect(res.code, res.stderr).toBe(0);
  return { stderr: res.stderr, out, file: (name) => readFile(join(out, name), "utf8") };
}

/** A line the RUN printed (plain progress: "#3 0.078 WORD"), not the echoed command line. */
const said = (word: string) => new RegExp(`^#\\d+ [\\d.]+ ${word}$`, "m");

const fresh = (name: string) => storeWithBusybox(join(dir.path, name));

beforeAll(async () => {
  dir = await tempDir("tsbuild-cachemounts-");
  project = join(dir.path, "app");
  await mkdir(project, { recursive: true });
  await writeFile(join(project, "app.txt"), "v1\n");
  // The RUN "downloads" only into an empty cache, and records what it found there, as a package manager would.
  await writeFile(
    join(project, "Dockerfile"),
    [
      "FROM busybox:local",
      "COPY app.txt /app.txt",
      "RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs,sharing=locked,uid=1000,gid=1001,mode=0750 \\",
      "    ls -A /var/cache/pkgs > /found && stat -c '%u:%g:%a' /var/cache/pkgs > /perm && \\",
      "    if [ -f /var/cache/pkgs/pkg.tar ]; then echo REUSED-CACHE; else echo DOWNLOADING; \\",
      "      echo payload-1 > /var/cache/pkgs/pkg.tar; mkdir /var/cache/pkgs/index; ln -s ../pkg.tar /var/cache/pkgs/index/latest; fi && \\",
      "    cat /var/cache/pkgs/index/latest > /seen",
      "",
    ].join("\n"),
  );
});

afterAll(async () => {
  await dir?.cleanup();
});

describe("--cache-to type=local,cache-mounts=true", () => {
  let cache: string;
  let storeB: string;

  it("an empty store that imports the cache re-runs the changed RUN over the restored cache mount", async () => {
    cache = join(dir.path, "ci-cache");
    const a = await buildIn(await fresh("store-a"), ["--cache-to", `type=local,dest=${cache},mode=max,cache-mounts=true`]);
    expect(a.stderr).toMatch(said("DOWNLOADING"));
    expect(a.stderr).toMatch(/exported cache to .*\(\d+ records, 1 cache mount, \d+ blobs, mode=max\)/);

    await writeFile(join(project, "app.txt"), "v2\n");
    storeB = await fresh("store-b");
    const b = await buildIn(storeB, ["--cache-from", `type=local,src=${cache}`]);
    expect(b.stderr).toMatch(/restored cache mount "pkgs" from type=local,src=/);
    expect(b.stderr).toMatch(said("REUSED-CACHE"));
    expect(b.stderr).not.toMatch(said("DOWNLOADING"));
    // What the RUN saw: the files, the symlink inside the cache, and the directory's owner and mode.
    expect(await b.file("found")).toBe("index\npkg.tar\n");
    expect(await b.file("seen")).toBe("payload-1\n");
    expect(await b.file("perm")).toBe("1000:1001:750\n");
  });

  it("without cache-mounts=true the cache carries no mount, and the re-run RUN starts empty", async () => {
    const plain = join(dir.path, "ci-cache-plain");
    await writeFile(join(project, "app.txt"), "v3\n");
    await buildIn(await fresh("store-c"), ["--cache-to", `type=local,dest=${plain},mode=max`]);
    await writeFile(join(project, "app.txt"), "v4\n");
    const d = await buildIn(await fresh("store-d"), ["--cache-from", `type=local,src=${plain}`]);
    expect(d.stderr).not.toMatch(/restored cache mount/);
    expect(d.stderr).toMatch(said("DOWNLOADING"));
    expect(await d.file("found")).toBe("");
  });

  it("a store's own cache mount is never replaced by an imported one", async () => {
    const own = storeLayout(storeB).cacheMount("pkgs");
    await writeFile(join(own, "local-only"), "mine\n");
    await writeFile(join(project, "app.txt"), "v5\n");
    const b = await buildIn(storeB, ["--cache-from", `type=local,src=${cache}`]);
    expect(b.stderr).not.toMatch(/restored cache mount/);
    expect(await b.file("found")).toBe("index\nlocal-only\npkg.tar\n");
  });

  it("a damaged cache mount tar is a warning, and the RUN starts with an empty cache mount", async () => {
    const damaged = join(dir.path, "ci-cache-damaged");
    await cp(cache, damaged, { recursive: true });
    const blob = (d: string) => join(damaged, "blobs/sha256", d.slice("sha256:".length));
    const index = JSON.parse(await readFile(join(damaged, "index.json"), "utf8"));
    const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), "utf8"));
    const config = JSON.parse(await readFile(blob(manifest.config.digest), "utf8"));
    const tar = blob(config.mounts[0].blob.digest);
    const bytes = await readFile(tar);
    bytes[600] = (bytes[600] ?? 0) ^ 0xff;
    await writeFile(tar, bytes);
    await writeFile(join(project, "app.txt"), "v6\n");
    const e = await buildIn(await fresh("store-e"), ["--cache-from", `type=local,src=${damaged}`]);
    expect(e.stderr).toMatch(/WARNING.*cache mount "pkgs": cannot restore it from the imported cache: .*; the RUN starts with an empty one/);
    expect(e.stderr).toMatch(said("DOWNLOADING"));
  });

  it("cache-mounts takes true or false", async () => {
    const bad = await tsbuild(["build", "--root", storeB, "--cache-to", `type=local,dest=${cache},cache-mounts=yes`, project]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/cache-mounts must be true or false/);
  });
});

describe("two builds restoring one shared cache mount at once", () => {
  it("both succeed and see the whole cache; it is unpacked once", async () => {
    const q = join(dir.path, "shared-app");
    await mkdir(q, { recursive: true });
    await writeFile(join(q, "n.txt"), "1\n");
    await writeFile(
      join(q, "Dockerfile"),
      [
        "FROM busybox:local",
        "COPY n.txt /n.txt",
        "RUN --mount=type=cache,id=shared-deps,target=/deps,sharing=shared \\",
        "    ( [ -f /deps/a ] && echo FOUND-DEPS || { echo NO-DEPS; seq 1 5000 > /deps/a; } ) && wc -l < /deps/a > /lines",
        "",
      ].join("\n"),
    );
    const cache = join(dir.path, "ci-cache-shared");
    const seed = await tsbuild(["build", "--root", await fresh("store-s0"), "--cache-to", `type=local,dest=${cache},mode=max,cache-mounts=true`, q]);
    expect(seed.code, seed.stderr).toBe(0);
    // Each build gets its own one-file change, so neither can hit the other's fresh RUN record: both must run it.
    for (const i of [1, 2]) {
      await cp(q, `${q}-${i}`, { recursive: true });
      await writeFile(join(`${q}-${i}`, "n.txt"), `changed ${i}\n`);
    }
    const store = await fresh("store-s1");
    const both = await Promise.all(
      [1, 2].map((i) =>
        tsbuildProcess([
          "build",
          "--progress",
          "plain",
          "--root",
          store,
          "-o",
          `type=local,dest=${join(dir.path, `shared-out-${i}`)}`,
          "--cache-from",
          `type=local,src=${cache}`,
          `${q}-${i}`,
        ]),
      ),
    );
    for (const r of both) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(said("FOUND-DEPS"));
    }
    expect(both.filter((r) => /restored cache mount "shared-deps"/.test(r.stderr))).toHaveLength(1);
    for (const i of [1, 2]) expect(await readFile(join(dir.path, `shared-out-${i}`, "lines"), "utf8")).toBe("5000\n");
  });
});

describe("--cache-to type=registry,cache-mounts=true", () => {
  let reg: RegistryServer;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("a cache mount pushed with the cache is restored by an empty store that pulls the cache", async () => {
    const ref = `${reg.host}/team/app:buildcache`;
    await writeFile(join(project, "app.txt"), "r1\n");
    const a = await buildIn(await fresh("store-ra"), ["--cache-to", `type=registry,ref=${ref},mode=max,cache-mounts=true`]);
    expect(a.stderr).toMatch(said("DOWNLOADING"));
    expect(a.stderr).toMatch(/exported cache to .*buildcache \(\d+ records, 1 cache mount, \d+ blobs, \d+ uploaded/);
    await writeFile(join(project, "app.txt"), "r2\n");
    const b = await buildIn(await fresh("store-rb"), ["--cache-from", `type=registry,ref=${ref}`]);
    expect(b.stderr).toMatch(new RegExp(`restored cache mount "pkgs" from type=registry,ref=`));
    expect(b.stderr).toMatch(said("REUSED-CACHE"));
    expect(await b.file("found")).toBe("index\npkg.tar\n");
    expect(await b.file("perm")).toBe("1000:1001:750\n");
  });
});
