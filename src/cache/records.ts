// Cache records in the store: step key → the layer it produced (or none), final-image key → manifest. One small JSON
// file per record, replaced atomically, so concurrent builds never corrupt each other; a file's mtime is its last use.
import { readFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../store/atomic-write.js";
import { isDigest, type Descriptor, type Digest } from "../image/types.js";

export interface LayerRecord {
  diffId: Digest;
  size: number;
}

export interface StepRecord {
  v: 1;
  key: string;
  /** The layer the step produced; null when it changed no file (the step still counts as cached). */
  layer: LayerRecord | null;
  created: string;
}

export interface ImageCacheRecord {
  v: 1;
  manifest: Descriptor;
}

const KEY = /^[0-9a-f]{32}$/;

export function stepRecordPath(root: string, key: string): string {
  return join(root, "cache", "steps", key.slice(0, 2), `${key}.json`);
}

export function imageRecordPath(root: string, key: string): string {
  return join(root, "cache", "images", `${key}.json`);
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch {
    // Absent, or unreadable (a damaged record must read as a miss, never fail the build).
    return undefined;
  }
}

export function isStepRecord(r: unknown, key?: string): r is StepRecord {
  const o = r as StepRecord | undefined;
  if (!o || o.v !== 1 || typeof o.key !== "string" || !KEY.test(o.key) || (key !== undefined && o.key !== key)) return false;
  if (o.layer === null) return true;
  return typeof o.layer === "object" && isDigest(o.layer.diffId) && Number.isInteger(o.layer.size) && o.layer.size >= 0;
}

/** Reads a step record and marks it used; undefined when absent or damaged. */
export async function getStepRecord(root: string, key: string): Promise<StepRecord | undefined> {
  const file = stepRecordPath(root, key);
  const r = await readJson(file);
  if (!isStepRecord(r, key)) return undefined;
  const now = new Date();
  await utimes(file, now, now).catch(() => undefined);
  return r;
}

export async function putStepRecord(root: string, record: StepRecord): Promise<void> {
  await writeFileAtomic(stepRecordPath(root, record.key), JSON.stringify(record));
}

export async function getImageRecord(root: string, key: string): Promise<ImageCacheRecord | undefined> {
  const file = imageRecordPath(root, key);
  const r = (await readJson(file)) as ImageCacheRecord | undefined;
  if (!r || r.v !== 1 || !r.manifest || !isDigest(r.manifest.digest)) return undefined;
  const now = new Date();
  await utimes(file, now, now).catch(() => undefined);
  return r;
}

export async function putImageRecord(root: string, key: string, manifest: Descriptor): Promise<void> {
  const record: ImageCacheRecord = { v: 1, manifest };
  await writeFileAtomic(imageRecordPath(root, key), JSON.stringify(record));
}
