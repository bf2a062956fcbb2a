// The library does what the CLI does: buildImage with outputs, cache export and metadata; progress belongs to the
// build call (two concurrent builds on one engine each see only their own events); load, pull and push hold the
// store's shared lock themselves, so an embedder cannot race a prune.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildImage, collectingProgress, loadArchive, openEngine, pullImage, pushImage, type ProgressEvent } from "../../src/index.js";
import { acquireGcLock } from "../../src/store/locks.js";
import { tempDir } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";

let dir: { path: string; cleanup(): Promise<void> };
let n = 0;
const fresh = (name: string) => join(dir.path, `${name}-${++n}`);

beforeAll(async () => {
  dir = await tempDir("tsbuild-api-");
});
afterAll(async () => {
  await dir?.cleanup();
});

/** A FROM scratch project whose steps name `label` (no RUN, so no runtime is needed). */
async function project(label: string, files: number): Promise<string> {
  const p = fresh(`ctx-${label}`);
  await mkdir(p, { recursive: true });
  const lines = ["FROM scratch"];
  for (let i = 0; i < files; i++) {
    await writeFile(join(p, `${label}-${i}.txt`), `${label} ${i}\n`);
    lines.push(`COPY ${label}-${i}.txt /${label}/`);
  }
  await writeFile(join(p, "Dockerfile"), lines.join("\n") + "\n");
  return p;
}

/** Settles within `ms`? (false: still pending) */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return done;
}

describe("progress per build call", () => {
  it("two concurrent builds on one engine report to their own sinks only", async () => {
    const engineSink = collectingProgress();
    const engine = openEngine({ root: fresh("store"), progress: engineSink });
    const a = collectingProgress();
    const b = collectingProgress();
    const [ra, rb] = await Promise.all([
      buildImage(engine, { contextDir: await project("alpha", 6), tags: ["alpha:1"], progress: a }),
      buildImage(engine, { contextDir: await project("beta", 4), tags: ["beta:1"], progress: b }),
    ]);
    const starts = (s: ProgressEvent[]) => s.filter((e): e is Extract<ProgressEvent, { kind: "step-start" }> => e.kind === "step-start");
    const nodesOf = (s: ProgressEvent[]) => s.filter((e) => "node" in e).map((e) => (e as { node: string }).node);
    // Every step a sink saw is one of its own build's steps.
    expect(starts(a.events).filter((e) => e.name.includes("COPY"))).toHaveLength(6);
    expect(starts(b.events).filter((e) => e.name.includes("COPY"))).toHaveLength(4);
    for (const e of starts(a.events)) expect(e.name).not.toContain("beta");
    for (const e of starts(b.events)) expect(e.name).not.toContain("alpha");
    // Step ids are unique within one build, and every event's node was started in that same sink.
    for (const s of [a, b]) {
      const ids = starts(s.events).map((e) => e.node);
      expect(new Set(ids).size).toBe(ids.length);
      for (const node of nodesOf(s.events)) expect(ids).toContain(node);
    }
    // Each build's final info lines name its own image; the engine's sink heard nothing.
    expect(a.events).toContainEqual({ kind: "info", message: "naming to alpha:1 done" });
    expect(b.events).not.toContainEqual({ kind: "info", message: "naming to alpha:1 done" });
    expect(engineSink.events).toEqual([]);
    expect(ra.cache.steps).toHaveLength(6);
    expect(rb.cache.steps).toHaveLength(4);
  });
});

describe("buildImage", () => {
  it("writes the outputs, the local cache and the metadata file, under the store lock", async () => {
    const engine = openEngine({ root: fresh("store") });
    const out = fresh("out");
    await mkdir(out);
    const meta = join(out, "meta.json");
    const cache = join(out, "cache");
    const sink = collectingProgress();
    const r = await buildImage(engine, {
      contextDir: await project("gamma", 2),
      tags: ["gamma:1"],
      outputs: [{ type: "oci", dest: join(out, "image.tar"), tar: true }],
      cacheTo: [{ type: "local", dest: cache }],
      metadataFile: meta,
      progress: sink,
    });
    const doc = JSON.parse(await readFile(meta, "utf8"));
    expect(doc).toEqual(r.metadata);
    expect(doc["containerimage.digest"]).toBe(r.manifest.digest);
    expect(doc["tsbuild.cache"].misses).toBe(2);
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]?.descriptor?.digest).toMatch(/^sha256:/);
    expect(r.cacheExports[0]).toMatchObject({ to: { type: "local", dest: cache } });
    expect(await readdir(cache)).toContain("index.json");
    // The cache imports into a fresh store: every step is a hit.
    const again = await buildImage(openEngine({ root: fresh("store") }), { contextDir: await project("gamma", 2), cacheFrom: [{ type: "local", src: cache }] });
    expect(again.cache.hits).toBe(2);
  });

  it("waits for a running prune before it builds (it holds the shared lock)", async () => {
    const root = fresh("store");
    const engine = openEngine({ root });
    await mkdir(root, { recursive: true });
    const gc = await acquireGcLock(root);
    const p = buildImage(engine, { contextDir: await project("delta", 1) });
    try {
      expect(await settlesWithin(p, 400)).toBe(false);
    } finally {
      await gc.release();
    }
    expect((await p).cache.steps).toHaveLength(1);
  });

  it("rejects push without a tag before building", async () => {
    await expect(buildImage(openEngine({ root: fresh("store") }), { contextDir: await project("eps", 1), push: true })).rejects.toMatchObject({
      code: "BAD_ARGS",
    });
  });
});

describe("load, pull and push take the store lock themselves", () => {
  let reg: RegistryServer;
  let archive: string;
  beforeAll(async () => {
    reg = await startRegistry();
    archive = await makeBusyboxArchive(dir.path);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("loadArchive waits while prune holds the store", async () => {
    const root = fresh("store");
    await mkdir(root, { recursive: true });
    const engine = openEngine({ root });
    const gc = await acquireGcLock(root);
    const p = loadArchive(engine.content, engine.images, archive);
    try {
      expect(await settlesWithin(p, 400)).toBe(false);
    } finally {
      await gc.release();
    }
    expect((await p).map((l) => l.name)).toContain("docker.io/library/busybox:local");
  });

  it("pushImage and pullImage wait while prune holds the store", async () => {
    const seeded = fresh("store");
    const engine = openEngine({ root: seeded });
    await loadArchive(engine.content, engine.images, archive);
    const gc1 = await acquireGcLock(seeded);
    const pushed = pushImage(engine, "busybox:local", `${reg.host}/api/bb:1`);
    try {
      expect(await settlesWithin(pushed, 400)).toBe(false);
    } finally {
      await gc1.release();
    }
    const digest = (await pushed).digest;

    const root = fresh("store");
    await mkdir(root, { recursive: true });
    const gc2 = await acquireGcLock(root);
    const pulled = pullImage(openEngine({ root }), `${reg.host}/api/bb:1`);
    try {
      expect(await settlesWithin(pulled, 400)).toBe(false);
    } finally {
      await gc2.release();
    }
    expect((await pulled).remoteDigest).toBe(digest);
  });
});
