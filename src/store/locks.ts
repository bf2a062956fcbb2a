// Store locking: builds share the store (one lock file each, no global build lock), prune excludes them all (gc.lock).
// Each side writes its own lock first and then looks for the other's, so at least one of two racing parties sees
// the other and backs off. Locks of dead processes (kill -9) are recognised by pid + process start time and removed.
// Also: removal of scratch space that dead builds left in tmp/, unmounting whatever they left mounted there.
import { readFileSync, type Dirent } from "node:fs";
import { randomBytes } from "node:crypto";
import { link, lstat, mkdir, open, readdir, readFile, realpath, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AbortError, EnvironmentError, StoreError, throwIfAborted } from "../errors.js";
import { ensurePrivateRoot } from "./store-paths.js";
import { BUILD_LOCK_NAME, SCRATCH_OWNER_FILE, storeLayout, type StoreLayout } from "./layout.js";
import { mountsUnder } from "../util/mountinfo.js";
import { errnoCode } from "../util/errno.js";
import { runQuiet } from "../util/run.js";

/** How often a waiting build looks at gc.lock again. */
const POLL_MS = 100;
/** Temp files and owner-less scratch dirs younger than this may belong to a writer that is not a build. */
const STALE_TEMP_MS = 60 * 60 * 1000;

export interface StoreLock {
  release(): Promise<void>;
}

/** What a lock file holds: enough to tell a live holder from a dead one whose pid was reused. */
export interface LockOwner {
  pid: number;
  /** Process start time in clock ticks since boot (field 22 of /proc/<pid>/stat), when known. */
  startTicks?: number;
  /** /proc/sys/kernel/random/boot_id: after a reboot every old lock is stale. */
  boot?: string;
  /** When the lock was taken (ISO 8601), for people reading the file. */
  started: string;
}

interface ProcStat {
  state: string;
  startTicks: number;
}

// /proc files are read synchronously: the kernel makes them up in microseconds, and fs/promises' readFile costs four
// thread-pool round trips each on every build's start (lock, owner stamp, boot id).

/** State and start time of a process from /proc; undefined when it does not exist. */
async function procStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (e) {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ESRCH") return undefined;
    throw e;
  }
  // The command name (field 2) may contain spaces and parentheses: fields after it start after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const startTicks = Number(rest[19]);
  return { state: rest[0] ?? "?", startTicks };
}

export async function bootId(): Promise<string | undefined> {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Is `pid` a running (non-zombie) process — and, if the start time is known, the same process that wrote it? */
export async function isProcessAlive(pid: number, startTicks?: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let st: ProcStat | undefined;
  try {
    st = await procStat(pid);
  } catch {
    st = undefined;
    // No /proc (or unreadable): fall back to signal 0, which cannot detect pid reuse.
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return errnoCode(e) === "EPERM";
    }
  }
  if (!st) return false;
  if (st.state === "Z" || st.state === "X") return false;
  return startTicks === undefined || st.startTicks === startTicks;
}

/** This process as a lock owner. */
export async function ownStamp(): Promise<LockOwner> {
  const st = await procStat(process.pid).catch(() => undefined);
  const boot = await bootId();
  return { pid: process.pid, ...(st ? { startTicks: st.startTicks } : {}), ...(boot ? { boot } : {}), started: new Date().toISOString() };
}

/** Parse a lock file; a torn or foreign file yields just the pid from `fallbackPid` (or nothing). */
export function parseOwner(text: string, fallbackPid: number | undefined): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === "number") {
      return {
        pid: v.pid,
        started: String(v.started ?? ""),
        ...(typeof v.startTicks === "number" ? { startTicks: v.startTicks } : {}),
        ...(typeof v.boot === "string" ? { boot: v.boot } : {}),
      };
    }
  } catch {
    // fall through
  }
  return fallbackPid === undefined ? undefined : { pid: fallbackPid, started: "" };
}

/** Is the owner of a lock still running (and the same boot)? */
export async function ownerAlive(o: LockOwner, boot: string | undefined): Promise<boolean> {
  if (o.boot !== undefined && boot !== undefined && o.boot !== boot) return false;
  return isProcessAlive(o.pid, o.startTicks);
}

/** A live or dead build lock found in locks/. */
interface FoundLock {
  path: string;
  owner: LockOwner;
}

async function readBuildLocks(dir: string): Promise<FoundLock[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
  const out: FoundLock[] = [];
  for (const n of names) {
    const m = BUILD_LOCK_NAME.exec(n);
    if (!m) continue;
    const path = join(dir, n);
    let text = "";
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if (errnoCode(e) === "ENOENT") continue; // released meanwhile
      throw e;
    }
    const owner = parseOwner(text, Number(m[1]));
    if (owner) out.push({ path, owner });
  }
  return out;
}

/** gc.lock's holder and the file's text, or undefined when there is none. */
async function readGcLock(layout: StoreLayout): Promise<{ owner: LockOwner; text: string } | undefined> {
  try {
    // A gc.lock always has its full content: it is created by link(2) from a complete temp file.
    const text = await readFile(layout.gcLock, "utf8");
    return { owner: parseOwner(text, undefined) ?? { pid: 0, started: "" }, text };
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Remove `lock` if it still holds `staleText` (written by an owner found dead). Breakers take `<lock>.break` first
 * (link(2): one at a time) and re-read the lock under it, so a lock that was freed and taken again by a live process
 * since it was read is seen and kept. (Renaming the lock aside and putting back what was not the stale one lost a lock
 * taken by a third process in between: two holders at once.) Returns without removing anything when another breaker
 * is at work; the caller tries again.
 */
export async function breakStaleLock(lock: string, staleText: string): Promise<void> {
  const breaker = `${lock}.break`;
  const tmp = join(dirname(lock), `.${basename(lock)}.break-${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  const h = await open(tmp, "wx", 0o600);
  try {
    await h.writeFile(JSON.stringify(await ownStamp()) + "\n");
  } finally {
    await h.close();
  }
  try {
    try {
      await link(tmp, breaker);
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw e;
      // A breaker holds it for a moment only; one left by a process that died while breaking is cleared once old.
      const holder = parseOwner(await readFile(breaker, "utf8").catch(() => ""), undefined);
      const st = await lstat(breaker).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > BREAKER_STALE_MS && !(holder && (await ownerAlive(holder, await bootId())))) await rm(breaker, { force: true });
      return;
    }
    try {
      const now = await readFile(lock, "utf8").catch((e: unknown) => (errnoCode(e) === "ENOENT" ? undefined : Promise.reject(e)));
      if (now === staleText) await rm(lock, { force: true });
    } finally {
      await rm(breaker, { force: true });
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/** A `<lock>.break` older than this whose owner is dead is left over from a crash. */
const BREAKER_STALE_MS = 5_000;

/**
 * Take a shared build lock on the store: any number of builds may hold one at once. Waits (polling every 100 ms)
 * while a live prune holds gc.lock; a gc.lock left by a dead process is removed. Rejects with AbortError on `signal`.
 */
export async function acquireBuildLock(root: string, signal?: AbortSignal): Promise<StoreLock> {
  await ensurePrivateRoot(root);
  const layout = storeLayout(root);
  await mkdir(layout.locksDir, { recursive: true });
  const owner = await ownStamp();
  const stamp = JSON.stringify(owner) + "\n";
  const boot = owner.boot;
  for (;;) {
    throwIfAborted(signal);
    const path = layout.buildLock(process.pid, randomBytes(8).toString("hex"));
    const h = await open(path, "wx", 0o644);
    try {
      await h.writeFile(stamp);
    } finally {
      await h.close();
    }
    const gc = await readGcLock(layout).catch(async (e: unknown) => {
      await rm(path, { force: true });
      throw e;
    });
    if (gc === undefined) return lockHandle(path);
    await rm(path, { force: true });
    if (!(await ownerAlive(gc.owner, boot))) {
      await breakStaleLock(layout.gcLock, gc.text);
      continue;
    }
    try {
      await sleep(POLL_MS, undefined, signal ? { signal } : {});
    } catch {
      throw new AbortError();
    }
  }
}

/** Run `fn` holding a shared build lock on the store (see acquireBuildLock); the lock goes when `fn` settles. */
export async function withBuildLock<T>(root: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireBuildLock(root, signal);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

function lockHandle(path: string): StoreLock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await rm(path, { force: true });
    },
  };
}

/**
 * Take the exclusive GC lock. Fails with STORE_BUSY when another prune or any live build holds the store; locks of
 * dead processes are removed on the way.
 */
export async function acquireGcLock(root: string): Promise<StoreLock> {
  await ensurePrivateRoot(root);
  const layout = storeLayout(root);
  const dir = layout.locksDir;
  await mkdir(dir, { recursive: true });
  const boot = await bootId();
  const tmp = join(dir, `.gc-${process.pid}-${randomBytes(8).toString("hex")}.tmp`);
  const h = await open(tmp, "wx", 0o644);
  try {
    await h.writeFile(JSON.stringify(await ownStamp()) + "\n");
  } finally {
    await h.close();
  }
  const path = layout.gcLock;
  try {
    // link(2) fails with EEXIST like O_EXCL, and publishes the lock with its content already complete.
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        break;
      } catch (e) {
        if (errnoCode(e) !== "EEXIST") throw e;
        const holder = await readGcLock(layout);
        if (holder && (await ownerAlive(holder.owner, boot))) {
          throw new StoreError("STORE_BUSY", `another prune (pid ${holder.owner.pid}) is running on the store ${root}`, {
            hint: "wait for it to finish, then run prune again",
          });
        }
        if (attempt > 10) throw new StoreError("STORE_BUSY", `could not take the GC lock ${path}`, { hint: "run prune again" });
        if (holder) await breakStaleLock(path, holder.text);
      }
    }
  } finally {
    await rm(tmp, { force: true });
  }
  const handle = lockHandle(path);
  try {
    const live: number[] = [];
    for (const l of await readBuildLocks(dir)) {
      if (await ownerAlive(l.owner, boot)) live.push(l.owner.pid);
      else await rm(l.path, { force: true });
    }
    if (live.length > 0) {
      const pids = [...new Set(live)].sort((a, b) => a - b);
      throw new StoreError("STORE_BUSY", `the store ${root} is in use by running build(s): pid ${pids.join(", ")}`, {
        hint: "run prune again when the build(s) finish",
      });
    }
    await removeDeadTempLocks(dir);
  } catch (e) {
    await handle.release();
    throw e;
  }
  return handle;
}

/** Leftover temp files of lock creation (`.gc-<pid>-….tmp`, `.gc.lock.break-<pid>-….tmp`) from dead processes. */
async function removeDeadTempLocks(dir: string): Promise<void> {
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    const m = /^\.gc(?:-stale|\.lock\.break)?-(\d+)-/.exec(n);
    if (m && !(await isProcessAlive(Number(m[1])))) await rm(join(dir, n), { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scratch space

/** Mount points at or below `dir` (a real path), deepest first. */
export { mountsUnder };

/**
 * Remove one scratch entry (file or directory) from tmp/. Anything mounted at or below it is lazily unmounted first,
 * deepest first; if a mount survives, the entry is left alone: a recursive delete would cross into the mounted
 * filesystem (a bind-mounted context directory, say) and destroy data outside the store.
 */
export async function removeScratchEntry(path: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return true;
    throw e;
  }
  const mounts = await mountsUnder(real);
  for (const mp of mounts) {
    const r = await runQuiet("umount", ["-l", mp]);
    if (r.spawnError === "ENOENT")
      throw new EnvironmentError("TOOL_MISSING", "umount is not installed (needed to clean up scratch mounts)", { hint: "apt-get install -y mount" });
    // A failure means already gone (a parent's lazy unmount took it along) or not permitted: the re-check below decides.
  }
  if (mounts.length > 0 && (await mountsUnder(real)).length > 0) return false;
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
  return true;
}

/** The pid written into a scratch directory's `.owner` by Engine.scratch(), if any. */
async function scratchOwner(dir: string): Promise<{ pid: number; since: number } | undefined> {
  try {
    const h = await open(join(dir, SCRATCH_OWNER_FILE), "r");
    try {
      const [text, st] = await Promise.all([h.readFile("utf8"), h.stat()]);
      const pid = Number.parseInt(text.trim(), 10);
      return Number.isInteger(pid) ? { pid, since: st.mtimeMs } : undefined;
    } finally {
      await h.close();
    }
  } catch {
    return undefined;
  }
}

/** The pid embedded in a temp file name made by atomic-write's tempPath(): `<prefix>-<pid>-<16 hex>`. */
function tempFilePid(name: string): number | undefined {
  const m = /-(\d+)-[0-9a-f]{16}$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Process start time in ms since the epoch, for telling a reused pid from the original owner. */
async function processStartMs(pid: number): Promise<number | undefined> {
  try {
    const st = await procStat(pid);
    if (!st) return undefined;
    const stat = readFileSync("/proc/stat", "utf8");
    const btime = Number(/^btime (\d+)$/m.exec(stat)?.[1]);
    // USER_HZ is 100 on every Linux architecture Node supports.
    return Number.isFinite(btime) ? btime * 1000 + st.startTicks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Does a live process own this tmp/ entry? Scratch dirs name theirs in `.owner` (a pid whose process started after
 * the marker was written is a reused pid, not the owner); temp files carry the writer's pid in their name.
 * `undefined` when the entry names no owner.
 */
export async function scratchOwnerAlive(path: string, name: string, isDir: boolean): Promise<boolean | undefined> {
  if (isDir) {
    const owner = await scratchOwner(path);
    if (!owner) return undefined;
    if (!(await isProcessAlive(owner.pid))) return false;
    const started = await processStartMs(owner.pid);
    // 2 s of slack: btime has a resolution of one second.
    return !(started !== undefined && started > owner.since + 2000);
  }
  const pid = tempFilePid(name);
  return pid === undefined ? undefined : isProcessAlive(pid);
}

/**
 * Is a tmp/ entry garbage while builds may be running? Scratch dirs: their `.owner` is dead. Temp files and
 * owner-less dirs (a scratch dir between mkdtemp and its marker, say): older than an hour and no live owner.
 */
export async function isStaleScratch(path: string, name: string, isDir: boolean, now = Date.now()): Promise<boolean> {
  const alive = await scratchOwnerAlive(path, name, isDir);
  if (alive !== undefined && isDir) return !alive;
  if (alive === true) return false;
  let mtime: number;
  try {
    mtime = (await lstat(path)).mtimeMs;
  } catch {
    return false;
  }
  return now - mtime >= STALE_TEMP_MS;
}

/**
 * Remove what dead builds left in tmp/ (unmounting first); returns how many entries were removed. Called at the start
 * of every build, so with nothing to do it costs one readdir.
 */
export async function cleanStaleScratch(root: string): Promise<number> {
  const tmp = storeLayout(root).tmpDir;
  let entries: Dirent[];
  try {
    entries = await readdir(tmp, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return 0;
    throw e;
  }
  let removed = 0;
  const now = Date.now();
  for (const e of entries) {
    const path = join(tmp, e.name);
    if (!(await isStaleScratch(path, e.name, e.isDirectory(), now))) continue;
    if (await removeScratchEntry(path)) removed++;
  }
  return removed;
}
