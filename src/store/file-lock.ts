// An exclusive lock for a read-modify-write of one file outside the store (the Docker config file): `<file>.lock`
// beside it, published complete with link(2) (fails with EEXIST like O_EXCL), holding the owner's pid and start
// time; a lock whose owner died is taken over, safely even when two processes find it stale at once.
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EnvironmentError } from "../errors.js";
import { errnoCode } from "./fs-error.js";
import { bootId, breakStaleLock, ownerAlive, ownStamp, parseOwner } from "./locks.js";

export interface FileLockOptions {
  /** Give up after this long while a live process holds the lock (default 30 s). */
  timeoutMs?: number;
  /** How the locked file is named in messages (default: its path). */
  what?: string;
}

const POLL_MS = 20;

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
      // A lock without an owner is torn (link(2) publishes only complete files): no process will remove it either.
      if (owner === undefined || !(await ownerAlive(owner, boot))) {
        await breakStaleLock(lock, text);
        await sleep(POLL_MS); // another breaker may be at work
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
