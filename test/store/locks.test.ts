// Store locks across real processes and real mounts: builds share the store, prune excludes them, dead holders
// (kill -9) are ignored, and scratch dirs of dead builds are unmounted and removed.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { AbortError, StoreError } from "../../src/errors.js";
import { acquireBuildLock, acquireGcLock, breakStaleLock, cleanStaleScratch, mountsUnder } from "../../src/store/locks.js";
import { BIN, REPO, tempDir } from "../helpers/cli.js";

const run = promisify(execFile);
let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await tempDir("tsbuild-locks-");
  root = join(dir.path, "store");
  await mkdir(root);
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  // Unmount anything a failed test left behind before removing the dir.
  for (const mp of await mountsUnder(dir.path)) await run("umount", ["-l", mp]).catch(() => undefined);
  await dir.cleanup();
});
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
});

/** A pid that certainly belongs to no process: a child that was killed with SIGKILL and reaped. */
async function deadPid(): Promise<number> {
  const c = spawn("sleep", ["60"], { stdio: "ignore" });
  const pid = c.pid as number;
  await new Promise<void>((resolve) => {
    c.once("exit", () => resolve());
    c.kill("SIGKILL");
  });
  return pid;
}

/** A real separate process that takes a build lock (through the built dist/) and keeps it until killed. */
async function buildLockHolder(): Promise<ChildProcess> {
  expect(existsSync(BIN), "dist/ is missing: run `npm run build` first").toBe(true);
  const script = `import { acquireBuildLock } from ${JSON.stringify(join(REPO, "dist/store/locks.js"))};
await acquireBuildLock(process.argv[1]);
process.stdout.write("locked\\n");
setInterval(() => {}, 1000);`;
  const c = spawn(process.execPath, ["--input-type=module", "-e", script, root], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout?.once("data", () => resolve());
    c.once("exit", (code) => reject(new Error(`lock holder exited ${code}`)));
  });
  return c;
}

const lockFiles = async () => (await readdir(join(root, "locks"))).filter((n) => !n.startsWith(".")).sort();

describe("build and GC locks", () => {
  it("two builds hold the store at once", async () => {
    const a = await acquireBuildLock(root);
    const b = await acquireBuildLock(root);
    const files = await lockFiles();
    expect(files).toHaveLength(2);
    for (const f of files) expect(f).toMatch(new RegExp(`^build-${process.pid}-[0-9a-f]+\\.lock$`));
    const content = JSON.parse(await readFile(join(root, "locks", files[0] as string), "utf8"));
    expect(content.pid).toBe(process.pid);
    expect(typeof content.startTicks).toBe("number");
    await a.release();
    await b.release();
    expect(await lockFiles()).toEqual([]);
  });

  it("GC fails with STORE_BUSY naming the pid while a build in another process holds the store, and proceeds after kill -9", async () => {
    const holder = await buildLockHolder();
    const err = await acquireGcLock(root).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("STORE_BUSY");
    expect((err as StoreError).message).toContain(String(holder.pid));
    expect((err as StoreError).hint).toBe("run prune again when the build(s) finish");
    // The failed GC released gc.lock again: builds are not blocked.
    expect(await lockFiles()).toEqual([expect.stringMatching(new RegExp(`^build-${holder.pid}-`))]);

    await new Promise<void>((resolve) => {
      holder.once("exit", () => resolve());
      holder.kill("SIGKILL");
    });
    const gc = await acquireGcLock(root);
    expect(await lockFiles()).toEqual(["gc.lock"]); // the dead build's lock was removed
    await gc.release();
  });

  it("ignores and removes a build lock whose pid is dead", async () => {
    const pid = await deadPid();
    await mkdir(join(root, "locks"), { recursive: true });
    await writeFile(join(root, "locks", `build-${pid}-0123abcd.lock`), JSON.stringify({ pid, started: new Date().toISOString() }));
    const gc = await acquireGcLock(root);
    expect(await lockFiles()).toEqual(["gc.lock"]);
    await gc.release();
  });

  it("a build lock whose pid now belongs to another process (pid reuse) counts as dead", async () => {
    await mkdir(join(root, "locks"), { recursive: true });
    // Our own pid, but a start time that is not ours: the process that wrote it is gone.
    await writeFile(join(root, "locks", `build-${process.pid}-0123abcd.lock`), JSON.stringify({ pid: process.pid, startTicks: 1, started: "" }));
    const gc = await acquireGcLock(root);
    await gc.release();
    expect(await lockFiles()).toEqual([]);
  });

  it("a second GC fails while the first holds gc.lock", async () => {
    const gc = await acquireGcLock(root);
    await expect(acquireGcLock(root)).rejects.toMatchObject({ code: "STORE_BUSY", message: expect.stringContaining(`pid ${process.pid}`) });
    await gc.release();
  });

  it("a build waits while gc.lock is held and proceeds after release", async () => {
    const gc = await acquireGcLock(root);
    let acquired = false;
    const pending = acquireBuildLock(root).then((l) => {
      acquired = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(acquired).toBe(false);
    expect(await lockFiles()).toEqual(["gc.lock"]); // a waiting build holds no lock
    const released = Date.now();
    await gc.release();
    const lock = await pending;
    expect(Date.now() - released).toBeLessThan(1000);
    expect(await lockFiles()).toEqual([expect.stringMatching(/^build-/)]);
    await lock.release();
  });

  it("a waiting build honours its AbortSignal and leaves no lock behind", async () => {
    const gc = await acquireGcLock(root);
    const ac = new AbortController();
    const pending = acquireBuildLock(root, ac.signal);
    setTimeout(() => ac.abort(), 250);
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    expect(await lockFiles()).toEqual(["gc.lock"]);
    await gc.release();
  });

  it("a gc.lock left by a dead process does not block builds", async () => {
    const pid = await deadPid();
    await mkdir(join(root, "locks"), { recursive: true });
    await writeFile(join(root, "locks", "gc.lock"), JSON.stringify({ pid, started: new Date().toISOString() }));
    const lock = await acquireBuildLock(root);
    expect(await lockFiles()).toEqual([expect.stringMatching(/^build-/)]);
    await lock.release();
  });
});

describe("cleanStaleScratch", () => {
  it("is a no-op without tmp/", async () => {
    expect(await cleanStaleScratch(root)).toBe(0);
  });

  it("unmounts a tmpfs and an overlay under a dead build's scratch dir (deepest first) and removes it; live and fresh entries stay", async () => {
    const tmp = join(root, "tmp");
    const dead = join(tmp, "build-dead01");
    const stage = join(dead, "stage-0");
    const ov = { lower: join(dead, "lower"), upper: join(dead, "upper"), work: join(dead, "work"), merged: join(dead, "merged") };
    for (const d of [stage, ...Object.values(ov)]) await mkdir(d, { recursive: true });
    await writeFile(join(dead, ".owner"), `${await deadPid()}\n`);
    await writeFile(join(ov.lower, "base.txt"), "from lower\n");
    await run("mount", ["-t", "tmpfs", "tmpfs", stage]);
    await mkdir(join(stage, "inner"));
    await run("mount", ["-t", "tmpfs", "tmpfs", join(stage, "inner")]); // nested: must go first
    await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${ov.lower},upperdir=${ov.upper},workdir=${ov.work}`, ov.merged]);
    await writeFile(join(ov.merged, "written.txt"), "x");
    expect(await mountsUnder(dead)).toHaveLength(3);

    const live = join(tmp, "build-live01");
    await mkdir(live);
    await writeFile(join(live, ".owner"), `${process.pid}\n`);
    const fresh = join(tmp, "build-nomarker"); // between mkdtemp and its marker: too young to judge
    await mkdir(fresh);
    const oldTemp = join(tmp, `blob-${await deadPid()}-0123456789abcdef`);
    await writeFile(oldTemp, "partial");
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(oldTemp, hourAgo, hourAgo);
    const newTemp = join(tmp, `blob-${await deadPid()}-fedcba9876543210`);
    await writeFile(newTemp, "partial");

    expect(await cleanStaleScratch(root)).toBe(2);
    expect(await mountsUnder(dead)).toEqual([]);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(oldTemp)).toBe(false);
    expect((await readdir(tmp)).sort()).toEqual(["blob-" + newTemp.split("blob-")[1], "build-live01", "build-nomarker"].sort());
    // The lower dir of the overlay was inside the scratch dir and went with it; nothing outside was touched.
    expect(existsSync(root)).toBe(true);
  });

  it("never touches a live build's scratch dir or its mounts", async () => {
    const live = join(root, "tmp", "build-live02");
    await mkdir(join(live, "m"), { recursive: true });
    await writeFile(join(live, ".owner"), `${process.pid}\n`);
    await run("mount", ["-t", "tmpfs", "tmpfs", join(live, "m")]);
    try {
      expect(await cleanStaleScratch(root)).toBe(0);
      expect(await mountsUnder(live)).toHaveLength(1);
    } finally {
      await run("umount", [join(live, "m")]);
    }
  });
});

describe("breakStaleLock", () => {
  const deadText = JSON.stringify({ pid: 2 ** 22 + 7, started: "2026-01-01T00:00:00.000Z" }) + "\n";

  it("removes a lock that still holds the dead owner's text", async () => {
    const lock = join(dir.path, "f.lock");
    await writeFile(lock, deadText);
    await breakStaleLock(lock, deadText);
    expect(existsSync(lock)).toBe(false);
    expect(await readdir(dir.path)).toEqual(["store"]);
  });

  it("keeps a lock that was freed and taken again since the stale one was read (the lost-lock race)", async () => {
    const lock = join(dir.path, "f.lock");
    const fresh = JSON.stringify({ pid: process.pid, started: new Date().toISOString() }) + "\n";
    await writeFile(lock, fresh);
    await breakStaleLock(lock, deadText);
    expect(await readFile(lock, "utf8")).toBe(fresh);
  });

  it("leaves the lock to a breaker at work, and clears a breaker left by a dead process once it is old", async () => {
    const lock = join(dir.path, "f.lock");
    await writeFile(lock, deadText);
    await writeFile(`${lock}.break`, JSON.stringify({ pid: process.pid, started: "" }) + "\n");
    await breakStaleLock(lock, deadText);
    expect(existsSync(lock)).toBe(true);
    await writeFile(`${lock}.break`, deadText);
    await utimes(`${lock}.break`, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await breakStaleLock(lock, deadText); // clears the dead breaker
    await breakStaleLock(lock, deadText);
    expect(existsSync(lock)).toBe(false);
  });
});
