// --cache-from / --cache-to values, BuildKit's syntax: type=local,src=DIR[,tag=T] | type=local,dest=DIR[,tag=T]
// [,mode=min|max] and type=registry,ref=HOST/REPO:TAG[,mode=min|max]. tag= names the cache's index.json entry.
// tsbuild's own --cache-to key cache-mounts=true also exports the RUN --mount=type=cache contents.
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { parseCsvKeyValues } from "./args.js";
import type { CacheExportMode } from "../cache/cache-export.js";
import { DEFAULT_LOCAL_CACHE_TAG } from "../cache/local-cache.js";

import type { CacheFromSpec, CacheToSpec } from "../cache/cache-spec.js";

export type { CacheFromSpec, CacheToSpec };

/** An OCI tag (the ref.name of the cache's index.json entry); default DEFAULT_LOCAL_CACHE_TAG. */
function tag(flag: string, spec: string, kv: Map<string, string>): string {
  const t = kv.get("tag") ?? DEFAULT_LOCAL_CACHE_TAG;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(t))
    throw new UsageError("BAD_FLAG_VALUE", `${flag} ${spec}: tag ${JSON.stringify(t)} is not a valid tag`, {
      hint: "letters, digits, _ . - (not first), at most 128 characters, e.g. tag=buildcache",
    });
  return t;
}

function checkKeys(flag: string, spec: string, kv: Map<string, string>, allowed: string[]): void {
  for (const k of kv.keys())
    if (!allowed.includes(k)) throw new UsageError("BAD_FLAG_VALUE", `${flag} ${spec}: unknown key ${k}`, { hint: `known keys: ${allowed.join(", ")}` });
}

function mode(flag: string, spec: string, kv: Map<string, string>): CacheExportMode {
  const m = kv.get("mode") ?? "min";
  if (m !== "min" && m !== "max") throw new UsageError("BAD_FLAG_VALUE", `${flag} ${spec}: mode must be min or max`);
  return m;
}

/** cache-mounts=true|false (default false). */
function cacheMounts(spec: string, kv: Map<string, string>): { cacheMounts?: true } {
  const v = kv.get("cache-mounts");
  if (v === undefined || v === "false") return {};
  if (v === "true" || v === "") return { cacheMounts: true };
  throw new UsageError("BAD_FLAG_VALUE", `--cache-to ${spec}: cache-mounts must be true or false`, {
    hint: "e.g. --cache-to type=local,dest=DIR,cache-mounts=true",
  });
}

function required(flag: string, spec: string, kv: Map<string, string>, key: string, example: string): string {
  const v = kv.get(key);
  if (!v) throw new UsageError("BAD_FLAG_VALUE", `${flag} ${spec}: ${key}= is required`, { hint: `e.g. ${flag} ${example}` });
  return v;
}

export function parseCacheFrom(spec: string, cwd: string): CacheFromSpec {
  // A bare reference means type=registry (docker buildx accepts that too).
  const kv = spec.includes("=")
    ? parseCsvKeyValues(spec, "--cache-from")
    : new Map([
        ["type", "registry"],
        ["ref", spec],
      ]);
  const type = kv.get("type");
  if (type === "local") {
    checkKeys("--cache-from", spec, kv, ["type", "src", "tag"]);
    return { type, src: resolve(cwd, required("--cache-from", spec, kv, "src", "type=local,src=DIR")), tag: tag("--cache-from", spec, kv) };
  }
  if (type === "registry") {
    checkKeys("--cache-from", spec, kv, ["type", "ref"]);
    return { type, ref: required("--cache-from", spec, kv, "ref", "type=registry,ref=HOST/REPO:cache") };
  }
  throw new UsageError("BAD_FLAG_VALUE", `--cache-from ${spec}: type must be local or registry`, { hint: "e.g. --cache-from type=local,src=DIR" });
}

export function parseCacheTo(spec: string, cwd: string): CacheToSpec {
  const kv = parseCsvKeyValues(spec, "--cache-to");
  const type = kv.get("type");
  if (type === "local") {
    checkKeys("--cache-to", spec, kv, ["type", "dest", "tag", "mode", "cache-mounts"]);
    return {
      type,
      dest: resolve(cwd, required("--cache-to", spec, kv, "dest", "type=local,dest=DIR")),
      tag: tag("--cache-to", spec, kv),
      mode: mode("--cache-to", spec, kv),
      ...cacheMounts(spec, kv),
    };
  }
  if (type === "registry") {
    checkKeys("--cache-to", spec, kv, ["type", "ref", "mode", "cache-mounts"]);
    return {
      type,
      ref: required("--cache-to", spec, kv, "ref", "type=registry,ref=HOST/REPO:cache"),
      mode: mode("--cache-to", spec, kv),
      ...cacheMounts(spec, kv),
    };
  }
  throw new UsageError("BAD_FLAG_VALUE", `--cache-to ${spec}: type must be local or registry`, { hint: "e.g. --cache-to type=local,dest=DIR" });
}
