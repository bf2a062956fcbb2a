// Cache records in the store: step key → the layer it produced (or none), final-image key → manifest. One small JSON
// file per record, replaced atomically, so concurrent builds never corrupt each other; a file's mtime is its last use.
// Where they live is store/layout.ts; their format is store/record-formats.ts (prune and du read them too).
import { readFile, utimes } from "node:fs/promises";
import { writeFileAtomic } from "../store/atomic-write.js";
import { storeLayout } from "../store/layout.js";
import { isImageCacheRecord, isStepRecord, RECORD_VERSION, type ImageCacheRecord, type StepRecord } from "../store/record-formats.js";
import type { Descriptor } from "../image/types.js";

export { isStepRecord, type ImageCacheRecord, type LayerRecord, type StepRecord } from "../store/record-formats.js";

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch {
    // Absent, or unreadable (a damaged record must read as a miss, never fail the build).
    return undefined;
  }
}

/** Reads a step record and marks it used; undefined when absent or damaged. */
export async function getStepRecord(root: string, key: string): Promise<StepRecord | undefined> {
  const file = storeLayout(root).stepRecord(key);
  const r = await readJson(file);
  if (!isStepRecord(r, key)) return undefined;
  const now = new Date();
  await utimes(file, now, now).catch(() => undefined);
  return r;
}

export async function putStepRecord(root: string, record: StepRecord): Promise<void> {
  await writeFileAtomic(storeLayout(root).stepRecord(record.key), JSON.stringify(record));
}

export async function getImageRecord(root: string, key: string): Promise<ImageCacheRecord | undefined> {
  const file = storeLayout(root).imageRecord(key);
  const r = await readJson(file);
  if (!isImageCacheRecord(r)) return undefined;
  const now = new Date();
  await utimes(file, now, now).catch(() => undefined);
  return r;
}

export async function putImageRecord(root: string, key: string, manifest: Descriptor): Promise<void> {
  const record: ImageCacheRecord = { v: RECORD_VERSION, manifest };
  await writeFileAtomic(storeLayout(root).imageRecord(key), JSON.stringify(record));
}
