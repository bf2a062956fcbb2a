// Cache records in the store: step key → the layer it produced (or none), final-image key → manifest. One small JSON
// file per record, replaced atomically, so concurrent builds never corrupt each other; a file's mtime is its last use.
// Where they live is store/layout.ts; their format is store/record-formats.ts (prune and du read them too).
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { utimes } from "node:fs/promises";
import { writeFileAtomic } from "../store/atomic-write.js";
import { storeLayout } from "../store/layout.js";
import { isImageCacheRecord, isStepRecord, RECORD_VERSION, type ImageCacheRecord, type StepRecord } from "../store/record-formats.js";
import type { Descriptor } from "../image/types.js";

export { isStepRecord, type ImageCacheRecord, type LayerRecord, type StepRecord } from "../store/record-formats.js";

/** A use closer than this to the last one recorded leaves the mtime alone: a no-op rebuild writes no record. */
const TOUCH_AFTER_MS = 60_000;

/**
 * The record's JSON and its mtime. Synchronous: a record is a few hundred bytes in the store, and one read beats the
 * four thread-pool round trips (open, stat, read, close) of fs/promises per record on a no-op rebuild's path.
 */
function readJson(file: string): { json: unknown; mtimeMs: number } | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const { mtimeMs } = fstatSync(fd);
    return { json: JSON.parse(readFileSync(fd, "utf8")), mtimeMs };
  } catch {
    // Absent, or unreadable (a damaged record must read as a miss, never fail the build).
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Marks a record used (its mtime is its last use, for prune's --filter until=), at most once a minute. */
async function touch(file: string, mtimeMs: number): Promise<void> {
  const now = Date.now();
  if (Math.abs(now - mtimeMs) < TOUCH_AFTER_MS) return;
  const at = new Date(now);
  await utimes(file, at, at).catch(() => undefined);
}

function readStepRecord(file: string, key: string): { record: StepRecord; mtimeMs: number } | undefined {
  const r = readJson(file);
  return r !== undefined && isStepRecord(r.json, key) ? { record: r.json, mtimeMs: r.mtimeMs } : undefined;
}

/** Reads a step record and marks it used; undefined when absent or damaged. */
export async function getStepRecord(root: string, key: string): Promise<StepRecord | undefined> {
  const file = storeLayout(root).stepRecord(key);
  const r = readStepRecord(file, key);
  if (r === undefined) return undefined;
  await touch(file, r.mtimeMs);
  return r.record;
}

/** Reads a step record without marking it used: a look at an old record (what a step made last time) is not a use. */
export function peekStepRecord(root: string, key: string): StepRecord | undefined {
  return readStepRecord(storeLayout(root).stepRecord(key), key)?.record;
}

export async function putStepRecord(root: string, record: StepRecord): Promise<void> {
  await writeFileAtomic(storeLayout(root).stepRecord(record.key), JSON.stringify(record));
}

export async function getImageRecord(root: string, key: string): Promise<ImageCacheRecord | undefined> {
  const file = storeLayout(root).imageRecord(key);
  const r = readJson(file);
  if (r === undefined || !isImageCacheRecord(r.json)) return undefined;
  await touch(file, r.mtimeMs);
  return r.json;
}

export async function putImageRecord(root: string, key: string, manifest: Descriptor): Promise<void> {
  const record: ImageCacheRecord = { v: RECORD_VERSION, manifest };
  await writeFileAtomic(storeLayout(root).imageRecord(key), JSON.stringify(record));
}
