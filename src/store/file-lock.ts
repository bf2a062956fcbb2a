// An exclusive lock for a read-modify-write of one file outside the store (the Docker config file): `<file>.lock`
// beside it, published complete with link(2) (fails with EEXIST like O_EXCL), holding the owner's pid and start
// time; a lock whose owner died is taken over, safely even when two processes find it stale at once.
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, rename, rm, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EnvironmentError } from "../errors.js";
import { errnoCode } from "./fs-error.js";
import { bootId, ownerAlive, ownStamp, parseOwner, type LockOwner } from "./locks.js";

export interface FileLockOptions {
  /** Give up after this long while a live process holds the lock (default 30 s). */
  timeoutMs?: number;
  /** How the locked file is named in messages (default: its path). */
  what?: string;
}

const POLL_MS = 20;

function sameOwner(a: LockOwner | undefined, b: LockOwner): boolean {
  return a !== undefined && a.pid === b.pid && a.startTicks === b.startTicks && a.started === b.started;
}

/** Remove `lock` if it still is the stale one we read: renamed aside first, so only one remover gets it. */
async function removeStale(lock: string, stale: LockOwner): Promise<void> {
  const aside = join(dirname(lock), `.${basename(lock)}.stale-${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    await rename(lock, aside);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return;
    throw e;
  }
  const got = parseOwner(await readFile(aside, "utf8").catch(() => ""), undefined);
  // Someone else's fresh lock (taken after we read the stale one): put it back unless yet another exists.
  if (!sameOwner(got, stale)) await link(aside, lock).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/** Run `fn` holding the exclusive lock `<path>.lock`; waits (polling) while another live process holds it. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const lock = `${path}.lock`;
  const dir = dirname(lock);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(lock)}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  const h = await open(tmp, "wx", 0o600);
  try {
    await h.writeFile(JSON.stringify(await ownStamp()) + "\n");
  } finally {
    await h.close();
  }
  const boot = await bootId();
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  try {
    for (;;) {
      try {
        await link(tmp, lock);
        break;
      } catch (e) {
        if (errnoCode(e) !== "EEXIST") throw e;
      }
      const text = await readFile(lock, "utf8").catch((e: unknown) => (errnoCode(e) === "ENOENT" ? undefined : Promise.reject(e)));
      if (text === undefined) continue; // released meanwhile
      const owner = parseOwner(text, undefined);
      if (owner === undefined || !(await ownerAlive(owner, boot))) {
        // A torn lock (no owner) is written by nobody: link(2) publishes only complete files.
        if (owner) await removeStale(lock, owner);
        else await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new EnvironmentError("FILE_LOCKED", `${opts.what ?? path} is locked by another tsbuild process (pid ${owner.pid}, lock file ${lock})`, {
          hint: `wait for it to finish; if no such process runs, remove ${lock}`,
        });
      }
      await sleep(POLL_MS + Math.floor(Math.random() * POLL_MS));
    }
  } finally {
    await rm(tmp, { force: true });
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
