// The step cache end to end through the CLI: what hits, what misses and why, parallel stages, --target pruning,
// concurrent builds on one store, and a build killed with SIGKILL mid-RUN.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmod, mkdir, readFile, rm, utimes, writeFile, readdir, unlink } from "node:fs/promises";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { tsbuild, tsbuildProcess, tempDir, BIN } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

interface Meta {
  "containerimage.digest": string;
  "containerimage.config.digest": string;
  "tsbuild.cache": { hits: number; misses: number; steps: { name: string; cached: boolean; reasons?: string[] }[] };
}

let n = 0;
/** Builds `project` and returns the metadata file's contents (asserting success). */
async function build(project: string, extra: string[] = []): Promise<Meta & { stderr: string }> {
  const meta = join(dir.path, `meta-${++n}.json`);
  const res = await r(["build", "--progress", "plain", "--metadata-file", meta, ...extra, project]);
  expect(res.code, res.stderr).toBe(0);
  return { ...(JSON.parse(await readFile(meta, "utf8")) as Meta), stderr: res.stderr };
}

const cached = (m: Meta) => m["tsbuild.cache"].steps.map((s) => s.cached);

beforeAll(async () => {
  dir = await tempDir();
  root = await storeWithBusybox(join(dir.path, "store"));
});

afterAll(async () => {
  await dir?.cleanup();
});

describe("which steps hit", () => {
  let p: string;
  beforeAll(async () => {
    p = join(dir.path, "app");
    await mkdir(join(p, "src"), { recursive: true });
    await writeFile(join(p, "deps.txt"), "dep-a\n");
    await writeFile(join(p, "src/a.txt"), "a\n");
    await writeFile(join(p, "src/b.txt"), "b\n");
    await writeFile(join(p, "src/ignored.log"), "noise\n");
    await writeFile(join(p, ".dockerignore"), "src/*.log\n");
    await writeFile(
      join(p, "Dockerfile"),
      [
        "FROM busybox:local",
        "COPY deps.txt /app/deps.txt",
        "RUN cat /app/deps.txt > /app/deps.out",
        "ENV STAGE=one",
        "COPY src/ /app/src/",
        "ARG USED=1",
        'RUN echo "$USED" > /app/used && ls /app/src > /app/list',
        "",
      ].join("\n"),
    );
  });

  it("a cold build misses every step, a no-op rebuild hits every step and gives the same image", async () => {
    const cold = await build(p, ["-t", "app:1"]);
    expect(cached(cold)).toEqual([false, false, false, false]);
    expect(cold["tsbuild.cache"].steps[0]?.reasons).toEqual(["no earlier build of this step is recorded"]);
    const again = await build(p, ["-t", "app:1"]);
    expect(cached(again)).toEqual([true, true, true, true]);
    expect(again["containerimage.config.digest"]).toBe(cold["containerimage.config.digest"]);
    expect(again.stderr).toMatch(/#\d+ CACHED/);
  });

  it("the terminal view marks hits CACHED", async () => {
    await build(p);
    const res = await r(["build", "--progress", "tty", "--explain-cache", p]);
    expect(res.code, res.stderr).toBe(0);
    const screen = res.stderr.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
    expect(screen).toMatch(/\[\+\] Building [\d.]+s \(\d+\/\d+\) FINISHED/);
    // BuildKit counts FROM and the RUN/COPY steps only (ENV and ARG make no vertex): 5 steps.
    expect(screen).toMatch(/=> CACHED \[2\/5\] COPY deps\.txt \/app\/deps\.txt/);
  });

  it("touching a file's mtime keeps every hit", async () => {
    const later = new Date(Date.now() + 60_000);
    await utimes(join(p, "src/a.txt"), later, later);
    await utimes(join(p, "deps.txt"), later, later);
    expect(cached(await build(p))).toEqual([true, true, true, true]);
  });

  it("changing one file's bytes misses exactly from its COPY onward, and --explain-cache names the file", async () => {
    await writeFile(join(p, "src/a.txt"), "a changed\n");
    const m = await build(p, ["--explain-cache"]);
    expect(cached(m)).toEqual([true, true, false, false]);
    expect(m.stderr).toMatch(/cache miss: files changed: src\/a\.txt/);
    expect(m["tsbuild.cache"].steps[3]?.reasons).toEqual(["an earlier step changed"]);
    expect(cached(await build(p))).toEqual([true, true, true, true]);
  });

  it("changing a file's mode misses from its COPY onward", async () => {
    await chmod(join(p, "src/b.txt"), 0o600);
    const m = await build(p);
    expect(cached(m)).toEqual([true, true, false, false]);
    expect(m["tsbuild.cache"].steps[2]?.reasons?.[0]).toMatch(/files changed: src\/b\.txt/);
  });

  it("a file added to the context that the COPY selects is named as added", async () => {
    await writeFile(join(p, "src/c.txt"), "c\n");
    const m = await build(p);
    expect(cached(m)).toEqual([true, true, false, false]);
    expect(m["tsbuild.cache"].steps[2]?.reasons?.[0]).toMatch(/files added: src\/c\.txt/);
  });

  it("a .dockerignore'd file never affects a key", async () => {
    await writeFile(join(p, "src/ignored.log"), "other noise\n");
    expect(cached(await build(p))).toEqual([true, true, true, true]);
  });

  it("an unused build arg keeps every hit; a used one misses from its first use", async () => {
    const unused = await build(p, ["--build-arg", "NOBODY=x"]);
    expect(cached(unused)).toEqual([true, true, true, true]);
    expect(unused.stderr).toMatch(/NOBODY/);
    const used = await build(p, ["--build-arg", "USED=2", "--explain-cache"]);
    expect(cached(used)).toEqual([true, true, true, false]);
    expect(used.stderr).toMatch(/cache miss: build arg USED changed: "1" → "2"/);
  });

  it("changing the dependency manifest misses every step after it", async () => {
    await writeFile(join(p, "deps.txt"), "dep-a\ndep-b\n");
    expect(cached(await build(p))).toEqual([false, false, false, false]);
  });

  it("--no-cache runs every step and names the reason", async () => {
    const m = await build(p, ["--no-cache"]);
    expect(cached(m)).toEqual([false, false, false, false]);
    expect(m["tsbuild.cache"].steps[0]?.reasons?.[0]).toMatch(/--no-cache/);
  });

  it("a hit whose layer blob is gone is a miss, not an error", async () => {
    const before = await build(p);
    expect(cached(before)).toEqual([true, true, true, true]);
    const manifest = JSON.parse(await readFile(join(root, "blobs/sha256", before["containerimage.digest"].slice(7)), "utf8"));
    const last = manifest.layers.at(-1).digest as string;
    await unlink(join(root, "blobs/sha256", last.slice(7)));
    const m = await build(p);
    expect(cached(m)).toEqual([true, true, true, false]);
    expect(m["tsbuild.cache"].steps[3]?.reasons?.[0]).toMatch(/missing from the store/);
  });
});

describe("a glob that matches nothing", () => {
  it("is a hit while nothing matches, and a miss that copies the file once one does", async () => {
    const p = join(dir.path, "glob-empty");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "Dockerfile"), "FROM busybox:local\nCOPY *.conf /etc/app/\nRUN ls /etc/app 2>&1 > /list || echo none > /list\n");
    const first = await build(p);
    expect(cached(first)).toEqual([false, false]);
    expect(cached(await build(p))).toEqual([true, true]);
    await writeFile(join(p, "app.conf"), "x\n");
    const out = join(dir.path, "glob-empty-out");
    const added = await build(p, ["-o", `type=local,dest=${out}`]);
    expect(cached(added)).toEqual([false, false]);
    expect(await readFile(join(out, "list"), "utf8")).toBe("app.conf\n");
    expect(await readFile(join(out, "etc/app/app.conf"), "utf8")).toBe("x\n");
  });
});

describe("stages", () => {
  it("independent builder stages run at the same time", async () => {
    const p = join(dir.path, "parallel");
    await mkdir(p, { recursive: true });
    const builder = (name: string) => [`FROM busybox:local AS ${name}`, `RUN date +%s > /start && sleep 2 && date +%s > /end`];
    await writeFile(
      join(p, "Dockerfile"),
      [
        ...builder("a"),
        ...builder("b"),
        "FROM busybox:local",
        "COPY --from=a /start /a-start",
        "COPY --from=a /end /a-end",
        "COPY --from=b /start /b-start",
        "COPY --from=b /end /b-end",
        "",
      ].join("\n"),
    );
    const out = join(p, "out");
    await build(p, ["--jobs", "2", "-o", `type=local,dest=${out}`]);
    const t = async (f: string) => Number((await readFile(join(out, f), "utf8")).trim());
    const [as, ae, bs, be] = [await t("a-start"), await t("a-end"), await t("b-start"), await t("b-end")];
    // Each slept 2 s; run one after the other, one would start no earlier than the other ended.
    expect(bs).toBeLessThan(ae);
    expect(as).toBeLessThan(be);
  });

  it("--target builds only the stages it needs; --no-cache-filter reruns just that stage", async () => {
    const p = join(dir.path, "target");
    await mkdir(p, { recursive: true });
    await writeFile(
      join(p, "Dockerfile"),
      [
        "FROM busybox:local AS broken",
        "RUN exit 1",
        "FROM busybox:local AS base",
        "RUN echo base > /base",
        "FROM base AS good",
        "RUN echo good > /good",
        "FROM busybox:local",
        "COPY --from=broken / /",
        "",
      ].join("\n"),
    );
    const m = await build(p, ["--target", "good"]);
    expect(m["tsbuild.cache"].steps.map((s) => s.name)).toEqual(["[base 2/2] RUN echo base > /base", "[good 2/2] RUN echo good > /good"]);
    const filtered = await build(p, ["--target", "good", "--no-cache-filter", "good"]);
    expect(cached(filtered)).toEqual([true, false]);
    const bad = await r(["build", "--target", "good", "--no-cache-filter", "nope", p]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--no-cache-filter nope: there is no stage named "nope"/);
  });

  it("a COPY --from of a fully cached stage unpacks it only when the COPY itself must run", async () => {
    const p = join(dir.path, "lazy");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "v"), "1\n");
    await writeFile(
      join(p, "Dockerfile"),
      [
        "FROM busybox:local AS gen",
        "RUN echo generated > /gen",
        "FROM busybox:local",
        "COPY v /v",
        "COPY --from=gen /gen /gen",
        "RUN cat /gen /v > /both",
        "",
      ].join("\n"),
    );
    await build(p);
    await writeFile(join(p, "v"), "2\n");
    const out = join(p, "out");
    const m = await build(p, ["-o", `type=local,dest=${out}`]);
    expect(cached(m)).toEqual([true, false, false, false]);
    expect(await readFile(join(out, "both"), "utf8")).toBe("generated\n2\n");
  });
});

describe("--cache-to / --cache-from type=local", () => {
  let p: string;
  let cacheDir: string;
  const fresh = (name: string) => storeWithBusybox(join(dir.path, name));
  const buildIn = async (store: string, extra: string[]) => {
    const meta = join(dir.path, `meta-${++n}.json`);
    const res = await tsbuild(["build", "--progress", "plain", "--root", store, "--metadata-file", meta, ...extra, p]);
    expect(res.code, res.stderr).toBe(0);
    return { ...(JSON.parse(await readFile(meta, "utf8")) as Meta), stderr: res.stderr };
  };
  beforeAll(async () => {
    p = join(dir.path, "portable");
    cacheDir = join(dir.path, "ci-cache");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "src.txt"), "source\n");
    await writeFile(
      join(p, "Dockerfile"),
      [
        "FROM busybox:local AS builder",
        "COPY src.txt /src.txt",
        "RUN cat /src.txt /src.txt > /built",
        "FROM busybox:local",
        "COPY --from=builder /built /app/built",
        "RUN wc -c /app/built > /app/size",
        "",
      ].join("\n"),
    );
  });

  it("a cache exported from one store gives an empty store a hit for every step and the same image", async () => {
    const a = await build(p, ["--cache-to", `type=local,dest=${cacheDir},mode=max`]);
    expect(a.stderr).toMatch(/exported cache to .*mode=max/);
    const b = await buildIn(await fresh("store-b"), ["--cache-from", `type=local,src=${cacheDir}`]);
    expect(cached(b)).toEqual([true, true, true, true]);
    expect(b["containerimage.config.digest"]).toBe(a["containerimage.config.digest"]);
  });

  it("mode=min carries only the final stage's steps", async () => {
    const minDir = join(dir.path, "ci-cache-min");
    await build(p, ["--cache-to", `type=local,dest=${minDir}`]);
    const b = await buildIn(await fresh("store-c"), ["--cache-from", `type=local,src=${minDir}`]);
    // The builder stage runs again; its result has the same key, so the final stage still hits.
    expect(cached(b)).toEqual([false, false, true, true]);
  });

  it("a damaged blob in the cache directory is a miss with a warning, and is not stored", async () => {
    const damaged = join(dir.path, "ci-cache-damaged");
    await build(p, ["--cache-to", `type=local,dest=${damaged},mode=max`]);
    const index = JSON.parse(await readFile(join(damaged, "index.json"), "utf8"));
    const manifest = JSON.parse(await readFile(join(damaged, "blobs/sha256", index.manifests[0].digest.slice(7)), "utf8"));
    const layer = manifest.layers[0].digest.slice(7) as string;
    const file = join(damaged, "blobs/sha256", layer);
    const bytes = await readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(file, bytes);
    const store = await fresh("store-d");
    const b = await buildIn(store, ["--cache-from", `type=local,src=${damaged}`]);
    expect(b.stderr).toMatch(/WARNING.*cache type=local.*cannot use layer/);
    expect(cached(b)[0]).toBe(false);
    await expect(readFile(join(store, "blobs/sha256", layer))).resolves.not.toEqual(bytes);
  });

  it("with SOURCE_DATE_EPOCH, cold builds in two stores give the same image even when a COPY lands in a dir a RUN wrote to", async () => {
    const q = join(dir.path, "reproducible");
    await mkdir(join(q, "tree"), { recursive: true });
    await writeFile(join(q, "tree/f"), "f\n");
    await writeFile(join(q, "Dockerfile"), "FROM busybox:local\nWORKDIR /srv\nRUN echo x > x\nCOPY tree/ ./tree/\n");
    const digests: string[] = [];
    for (const name of ["repro-1", "repro-2"]) {
      const store = await fresh(name);
      const meta = join(dir.path, `meta-${++n}.json`);
      const res = await tsbuild(["build", "--root", store, "--metadata-file", meta, q], { env: { ...process.env, SOURCE_DATE_EPOCH: "0" } });
      expect(res.code, res.stderr).toBe(0);
      digests.push((JSON.parse(await readFile(meta, "utf8")) as Meta)["containerimage.digest"]);
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the RUN's directory mtime lands in another second
    }
    expect(digests[1]).toBe(digests[0]);
  });

  it("a cache directory that does not exist yet is a warning; bad specs are usage errors", async () => {
    const b = await buildIn(await fresh("store-e"), ["--cache-from", `type=local,src=${join(dir.path, "nope")}`]);
    expect(b.stderr).toMatch(/no cache there yet/);
    const bad = await r(["build", "--cache-to", "type=local", p]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--cache-to type=local: dest= is required/);
    const mode = await r(["build", "--cache-to", `type=local,dest=${cacheDir},mode=all`, p]);
    expect(mode.stderr).toMatch(/mode must be min or max/);
  });
});

describe("kept snapshots", () => {
  it("a changed rebuild runs over a kept snapshot and gives the same image as unpacking every layer", async () => {
    const p = join(dir.path, "snapshots");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "early"), "early\n");
    await writeFile(join(p, "late"), "late 1\n");
    await writeFile(
      join(p, "Dockerfile"),
      [
        "FROM busybox:local",
        "COPY early /srv/early",
        "RUN rm /bin/ls && mkdir -p /srv/out && echo one > /srv/out/a && ln /srv/out/a /srv/out/hard && ln -s a /srv/out/soft",
        "COPY late /srv/late",
        "RUN cat /srv/late /srv/out/a > /srv/out/b && rm /srv/early && mkfifo /srv/out/fifo",
        "",
      ].join("\n"),
    );
    const env = { ...process.env, SOURCE_DATE_EPOCH: "0" };
    const run = async (store: string, extra: string[]) => {
      const meta = join(dir.path, `meta-${++n}.json`);
      const res = await tsbuild(["build", "--root", store, "--metadata-file", meta, ...extra, p], { env });
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(await readFile(meta, "utf8")) as Meta;
    };
    const a = await storeWithBusybox(join(dir.path, "snap-a"));
    await run(a, []);
    await writeFile(join(p, "late"), "late 2\n");
    const first = await run(a, []); // makes the snapshot at the late COPY
    expect(cached(first)).toEqual([true, true, false, false]);
    await writeFile(join(p, "late"), "late 3\n");
    const second = await run(a, []); // runs over it
    expect(cached(second)).toEqual([true, true, false, false]);
    expect((await readdir(join(a, "snapshots"))).length).toBeGreaterThan(0);
    const b = await storeWithBusybox(join(dir.path, "snap-b"));
    const unpacked = await run(b, ["--snapshotter", "copy"]);
    expect(unpacked["containerimage.digest"]).toBe(second["containerimage.digest"]);
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    expect(mounts).not.toContain(a);

    // du counts them; prune keeps recently used ones under until=, and --all removes them; a rebuild still works.
    expect((await tsbuild(["du", "--root", a])).stdout).toMatch(/^Snapshots\s+[1-9]/m);
    await tsbuild(["prune", "--root", a, "--filter", "until=1h"]);
    expect((await readdir(join(a, "snapshots"))).length).toBeGreaterThan(0);
    const pruned = await tsbuild(["prune", "--root", a, "--all"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/unpacked snapshots/);
    expect(await readdir(join(a, "snapshots"))).toEqual([]);
    await writeFile(join(p, "late"), "late 4\n");
    await run(a, []);
  });
});

describe("one store, several processes", () => {
  it("two builds of different projects at once both succeed", async () => {
    const projects = await Promise.all(
      ["one", "two"].map(async (name) => {
        const p = join(dir.path, `concurrent-${name}`);
        await mkdir(p, { recursive: true });
        await writeFile(join(p, "f"), name);
        await writeFile(join(p, "Dockerfile"), `FROM busybox:local\nCOPY f /f\nRUN sleep 1 && cat /f > /g\n`);
        return p;
      }),
    );
    const results = await Promise.all(projects.map((p, i) => tsbuildProcess(["build", "--root", root, "-t", `conc:${i}`, p])));
    for (const res of results) expect(res.code, res.stderr).toBe(0);
  });

  it("a build killed with SIGKILL mid-RUN leaves a store the next build uses, which also stops the orphaned container", async () => {
    const p = join(dir.path, "killed");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "Dockerfile"), "FROM busybox:local\nRUN echo before > /before\nARG T=60\nRUN sleep $T && echo after > /after\n");
    const child = spawn(process.execPath, [BIN, "build", "--progress", "plain", "--root", root, p], { stdio: ["ignore", "ignore", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      let text = "";
      child.stderr.on("data", (c: Buffer) => {
        text += c.toString();
        if (text.includes("RUN sleep $T")) setTimeout(resolve, 700);
      });
      child.on("exit", () => reject(new Error(`build ended before it could be killed:\n${text}`)));
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("close", resolve));
    const m = await build(p, ["--build-arg", "T=0"]);
    expect(cached(m)).toEqual([true, false]);
    // What the killed build left (its container, scratch dir, overlay mounts) is gone after the next build.
    for (const runtime of ["crun", "runc"]) {
      const listed = await new Promise<string>((resolve) => {
        const c = spawn(runtime, ["--root", `/run/tsbuild/${runtime}`, "list", "--format", "json"], { stdio: ["ignore", "pipe", "ignore"] });
        let out = "";
        c.stdout.on("data", (d: Buffer) => (out += d.toString()));
        c.on("close", () => resolve(out));
        c.on("error", () => resolve("[]"));
      });
      expect(listed).not.toContain(join(root, "tmp"));
    }
    const left = (await readdir(join(root, "tmp")).catch(() => [] as string[])).filter((e) => e.startsWith("build-"));
    expect(left).toEqual([]);
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    expect(mounts).not.toContain(join(root, "tmp"));
  });
});

afterAll(async () => {
  await rm(join(dir?.path ?? "/nonexistent", "unused"), { force: true });
});
