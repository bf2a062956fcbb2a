// Canonical JSON for manifests, indexes and configs: keys in the order the object was built, no whitespace,
// so the same document always hashes to the same digest.
import { createHash } from "node:crypto";
import type { Digest } from "./types.js";

export function canonicalJson(obj: unknown): string {
  return JSON.stringify(obj);
}

export function jsonBytes(obj: unknown): Buffer {
  return Buffer.from(canonicalJson(obj), "utf8");
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}
