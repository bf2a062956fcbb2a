// Why a step missed the cache: the parts of its key are compared with those of the last time the same step (same
// context, Dockerfile, stage and position) was built, and every difference is named in words a user understands.
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../store/atomic-write.js";
import { storeLayout } from "../store/layout.js";
import type { KeyParts } from "./keys.js";

export interface ExplainRecord {
  v: 1;
  key: string;
  parts: KeyParts;
  /** For parts that digest many files: path → short description, so the changed paths can be named. */
  files?: Record<string, Record<string, string>>;
}

export async function loadExplain(root: string, stepId: string): Promise<ExplainRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(storeLayout(root).explainRecord(stepId), "utf8")) as ExplainRecord;
    return r && r.v === 1 && r.parts && typeof r.parts === "object" ? r : undefined;
  } catch {
    return undefined;
  }
}

export async function saveExplain(root: string, stepId: string, record: ExplainRecord): Promise<void> {
  await writeFileAtomic(storeLayout(root).explainRecord(stepId), JSON.stringify(record));
}

const MAX_PATHS = 5;

function short(v: string | undefined): string {
  if (v === undefined) return "(unset)";
  const one = v.replace(/\s*\n\s*/g, " ");
  return JSON.stringify(one.length > 80 ? `${one.slice(0, 77)}...` : one);
}

function listPaths(paths: string[]): string {
  const shown = paths.slice(0, MAX_PATHS).join(", ");
  return paths.length > MAX_PATHS ? `${shown} (+${paths.length - MAX_PATHS} more)` : shown;
}

/** Paths are stored as "<source index>:<path>"; users think in paths. */
function displayPath(p: string): string {
  return p.replace(/^\d+:(\.\/?)?/, "") || ".";
}

function describeFiles(before: Record<string, string> | undefined, after: Record<string, string> | undefined): string[] {
  if (!before || !after) return [];
  const changed: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  for (const [p, d] of Object.entries(after)) {
    const old = before[p];
    if (old === undefined) added.push(displayPath(p));
    else if (old !== d) changed.push(displayPath(p));
  }
  for (const p of Object.keys(before)) if (!(p in after)) removed.push(displayPath(p));
  const out: string[] = [];
  if (changed.length) out.push(`changed: ${listPaths(changed)}`);
  if (added.length) out.push(`added: ${listPaths(added)}`);
  if (removed.length) out.push(`removed: ${listPaths(removed)}`);
  return out;
}

function describePart(name: string, before: string | undefined, after: string | undefined, prev: ExplainRecord, now: Omit<ExplainRecord, "v" | "key">): string {
  if (name === "parent") return "an earlier step changed";
  if (name === "instruction") return `instruction changed: ${short(before)} → ${short(after)}`;
  if (name === "base") return `base image changed: ${short(before)} → ${short(after)}`;
  if (name.startsWith("arg:")) return `build arg ${name.slice(4)} changed: ${short(before)} → ${short(after)}`;
  if (name.startsWith("env:")) return `environment variable ${name.slice(4)} changed: ${short(before)} → ${short(after)}`;
  const files = describeFiles(prev.files?.[name], now.files?.[name]);
  const label = name.startsWith("files") ? "files" : name;
  if (files.length) return `${label} ${files.join("; ")}`;
  return `${label} changed: ${short(before)} → ${short(after)}`;
}

/** Reasons for a miss; the earlier-step reason comes last since the others are the root cause when present. */
export function explainMiss(prev: ExplainRecord | undefined, now: Omit<ExplainRecord, "v" | "key">): string[] {
  if (!prev) return ["no earlier build of this step is recorded"];
  const names = [...new Set([...Object.keys(prev.parts), ...Object.keys(now.parts)])].sort((a, b) =>
    a === "parent" ? 1 : b === "parent" ? -1 : a < b ? -1 : 1,
  );
  const reasons: string[] = [];
  for (const n of names) {
    const before = prev.parts[n];
    const after = now.parts[n];
    if (before !== after) reasons.push(describePart(n, before, after, prev, now));
  }
  return reasons.length ? reasons : ["the cached result is missing from the store (pruned, or never written because the build was interrupted)"];
}
