// The restore hook of RUN cache mounts (--cache-from of a cache exported with cache-mounts=true): called only when
// the store has no directory for the id, always holding the mount's lock, and never for a throwaway private instance.
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { parseMountSpec } from "../../src/solver/mount-spec.js";
import { prepareRunMounts, type RunMountContext } from "../../src/solver/run-mounts.js";
import { storeLayout } from "../../src/store/layout.js";

let base: string;
let store: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "tsbuild-restorehook-"));
  store = join(base, "store");
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A mount context whose restore hook records each call and whether the mount's lock was held during it. */
function ctx(name: string, calls: { id: string; dir: string; locked: boolean }[]): RunMountContext {
  return {
    storeRoot: store,
    scratch: join(base, name),
    context: { root: base },
    stageRootfs: async () => undefined,
    secrets: new Map(),
    signal: new AbortController().signal,
    restoreCacheMount: async (id, dir) => {
      const locked = await access(`${dir}.lock`).then(
        () => true,
        () => false,
      );
      calls.push({ id, dir, locked });
      await mkdir(dir);
      await writeFile(join(dir, "restored"), "r");
    },
  };
}

describe("restoreCacheMount hook", () => {
  test.each(["shared", "private", "locked"])("sharing=%s: a missing directory is restored under the lock, then used", async (sharing) => {
    const calls: { id: string; dir: string; locked: boolean }[] = [];
    const p = await prepareRunMounts([parseMountSpec(`type=cache,target=/c,id=deps,sharing=${sharing}`)], ctx("a", calls));
    const dir = storeLayout(store).cacheMount("deps");
    expect(calls).toEqual([{ id: "deps", dir, locked: true }]);
    expect(p.mounts[0]?.source).toBe(dir);
    expect(await readdir(dir)).toEqual(["restored"]);
    await p.release();
    // The lock of a shared mount is held for the restore only; the others' until release.
    expect((await readdir(storeLayout(store).cacheMountsDir)).filter((f) => f.endsWith(".lock"))).toEqual([]);
  });

  test("an existing directory is never restored over", async () => {
    const dir = storeLayout(store).cacheMount("/c");
    await mkdir(dir, { recursive: true });
    const calls: { id: string; dir: string; locked: boolean }[] = [];
    const p = await prepareRunMounts([parseMountSpec("type=cache,target=/c")], ctx("b", calls));
    expect(calls).toEqual([]);
    await p.release();
  });

  test("a private mount in use elsewhere gets a fresh throwaway instance, which is not restored", async () => {
    const spec = parseMountSpec("type=cache,target=/c,sharing=private");
    const first: { id: string; dir: string; locked: boolean }[] = [];
    const a = await prepareRunMounts([spec], ctx("c1", first));
    const second: { id: string; dir: string; locked: boolean }[] = [];
    await rm(storeLayout(store).cacheMount("/c"), { recursive: true });
    const b = await prepareRunMounts([spec], ctx("c2", second));
    expect(second).toEqual([]);
    expect(b.mounts[0]?.source).toContain(join(base, "c2"));
    await b.release();
    await a.release();
  });
});
