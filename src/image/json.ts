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

/** The `config` members Go's encoding/json writes as maps, whose keys it sorts (byte order). */
const GO_MAP_FIELDS = ["Labels", "ExposedPorts", "Volumes"];

const sortedKeys = (o: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    Object.keys(o)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((k) => [k, o[k]]),
  );

const isZero = (v: unknown): boolean =>
  v === null ||
  v === undefined ||
  v === "" ||
  v === false ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0);

/**
 * An image config as BuildKit (Go) serialises it: in `config`, zero values left out (every field of the image
 * spec's ImageConfig is `omitempty`: `ENTRYPOINT []` and an ENTRYPOINT-reset CMD are absent, not `[]`/null) and
 * map keys sorted, so image ids line up with BuildKit's for the same content.
 */
export function imageConfigJson(config: { config?: object }): string {
  if (!config.config) return canonicalJson(config);
  const c: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config.config)) {
    if (isZero(v)) continue;
    c[k] = GO_MAP_FIELDS.includes(k) && typeof v === "object" && v !== null ? sortedKeys(v as Record<string, unknown>) : v;
  }
  return canonicalJson({ ...config, config: c });
}
