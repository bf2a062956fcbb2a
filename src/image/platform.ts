// Image platforms (os/arch[/variant]) as containerd's `platforms` package treats them: normalising aliases and
// default variants, parsing `--platform`, the host's platform, and picking one manifest of an index. The one place
// these rules live: pull, load, the exporters and the solver all ask here, so they cannot disagree about arm.
import { arch as nodeArch } from "node:process";
import { UsageError, type ErrorCode, type TsbuildError, type TsbuildErrorOptions } from "../errors.js";
import type { Descriptor, ImageConfig, Platform } from "./types.js";

/**
 * containerd's normalizeArch: lower case, aliases resolved, and the canonical variant: `arm` means `arm/v7`,
 * `arm64/v8` is plain `arm64` (v8 is arm64's baseline, so containerd drops it), `amd64/v1` is plain `amd64`.
 */
function normalizeArch(architecture: string, variant: string): { architecture: string; variant: string } {
  let a = architecture.toLowerCase();
  let v = variant.toLowerCase();
  switch (a) {
    case "i386":
    case "i686":
    case "ia32":
      a = "386";
      v = "";
      break;
    case "x86_64":
    case "x86-64":
    case "x64":
    case "amd64":
      a = "amd64";
      if (v === "v1") v = "";
      break;
    case "aarch64":
    case "arm64":
      a = "arm64";
      if (v === "8" || v === "v8" || v === "v8.0") v = "";
      else if (v === "9" || v === "9.0" || v === "v9.0") v = "v9";
      break;
    case "armhf":
      a = "arm";
      v = "v7";
      break;
    case "armel":
      a = "arm";
      v = "v6";
      break;
    case "arm":
      if (v === "" || v === "7") v = "v7";
      else if (v === "5" || v === "6" || v === "8") v = `v${v}`;
      break;
  }
  return { architecture: a, variant: v };
}

/** Canonical form (containerd's `platforms.Normalize`): `linux/aarch64` → `linux/arm64`, `linux/arm` → `linux/arm/v7`. */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === "macos") os = "darwin";
  const { architecture, variant } = normalizeArch(p.architecture, p.variant ?? "");
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p["os.version"]) out["os.version"] = p["os.version"];
  return out;
}

/**
 * `linux/arm64`, `linux/arm/v7`, `linux/amd64` (normalised). Unlike containerd, the os alone is not enough: docker's
 * `--platform` needs os/arch too, and guessing the architecture from the host would hide a typo.
 */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().split("/");
  const bad = (why: string) =>
    new UsageError("INVALID_PLATFORM", `invalid platform ${JSON.stringify(spec)}: ${why}`, {
      hint: "platforms look like os/arch[/variant], e.g. linux/amd64 or linux/arm/v7",
    });
  if (parts.length < 2 || parts.length > 3) throw bad("expected os/arch or os/arch/variant");
  if (parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) throw bad("each part must be letters, digits, '.', '_' or '-'");
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

/**
 * `--platform linux/amd64,linux/arm64`: each entry parsed and normalised, duplicates (after normalisation) dropped,
 * order kept (the first is the image a single-platform consumer gets, as in buildx).
 */
export function parsePlatformList(spec: string): Platform[] {
  const out: Platform[] = [];
  for (const part of spec.split(",")) {
    if (part.trim() === "") continue;
    const p = parsePlatform(part);
    if (!out.some((q) => samePlatform(p, q))) out.push(p);
  }
  if (out.length === 0)
    throw new UsageError("INVALID_PLATFORM", `invalid platform list ${JSON.stringify(spec)}: no platform in it`, {
      hint: "e.g. --platform linux/amd64,linux/arm64",
    });
  return out;
}

/** `os/arch[/variant]`, as docker prints it (os.version left out). */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** The platform an image config declares (`architecture`, `os`, `variant`, `os.version`). */
export function configPlatform(config: Pick<ImageConfig, "architecture" | "os" | "variant"> & { "os.version"?: string }): Platform {
  const p: Platform = { architecture: String(config.architecture), os: String(config.os) };
  if (config.variant) p.variant = config.variant;
  if (config["os.version"]) p["os.version"] = config["os.version"];
  return p;
}

const NODE_TO_GO_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips64el: "mips64le",
};

/** The platform this process runs on, normalised (always linux: tsbuild runs linux containers). */
export function hostPlatform(): Platform {
  const architecture = NODE_TO_GO_ARCH[nodeArch] ?? nodeArch;
  // Node does not expose the ARM level directly; its build config does (arm_version 6/7).
  const armVersion = (process.config.variables as Record<string, unknown>)["arm_version"];
  const variant = architecture === "arm" && (typeof armVersion === "string" || typeof armVersion === "number") ? `v${armVersion}` : undefined;
  return normalizePlatform({ os: "linux", architecture, ...(variant ? { variant } : {}) });
}

/** containerd's arm64 variant → (major, minor) ladders: v9.x also runs v8.(x+5) code. */
function arm64Ladder(variant: string): string[] | undefined {
  const m = /^v(8|9)(?:\.(\d))?$/.exec(variant);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2] ?? 0);
  const steps: [number, number][] =
    major === 8
      ? [[8, minor]]
      : [
          [9, minor],
          [8, Math.min(minor + 5, 9)],
        ];
  const out: string[] = [];
  for (const [maj, top] of steps) for (let n = top; n >= 0; n--) out.push(n === 0 ? `v${maj}` : `v${maj}.${n}`);
  return out;
}

/**
 * What a machine of platform `want` runs, best first (containerd's `platforms.Only`): amd64/vN also runs
 * amd64/v(N-1)…v1 and 386; arm/vN runs arm/v(N-1)…v5; arm64/v8.x runs arm64/v8.(x-1)… and arm/v8…v5.
 */
export function compatiblePlatforms(want: Platform): Platform[] {
  const p = normalizePlatform(want);
  const at = (architecture: string, variant?: string): Platform => normalizePlatform({ os: p.os, architecture, ...(variant ? { variant } : {}) });
  const out: Platform[] = [];
  switch (p.architecture) {
    case "amd64": {
      out.push(p);
      const n = Number((p.variant ?? "").replace(/^v/, ""));
      if (Number.isInteger(n)) for (let v = n - 1; v >= 1; v--) out.push(at("amd64", `v${v}`));
      out.push(at("386"));
      break;
    }
    case "arm": {
      out.push(p);
      const n = Number((p.variant ?? "").replace(/^v/, ""));
      if (Number.isInteger(n)) for (let v = n - 1; v >= 5; v--) out.push(at("arm", `v${v}`));
      break;
    }
    case "arm64": {
      const variant = p.variant ?? "v8";
      const ladder = arm64Ladder(variant);
      if (ladder === undefined) {
        out.push(p);
        break;
      }
      for (const v of ladder) out.push(at("arm64", v));
      for (let v = 8; v >= 5; v--) out.push(at("arm", `v${v}`));
      break;
    }
    default:
      out.push(p);
  }
  return out;
}

/** Equal after normalisation; os.version is ignored (it only matters for Windows images). */
export function samePlatform(a: Platform, b: Platform): boolean {
  const x = normalizePlatform(a);
  const y = normalizePlatform(b);
  return x.os === y.os && x.architecture === y.architecture && (x.variant ?? "") === (y.variant ?? "");
}

/** How well an image for `have` suits `want`: 0 is an exact match, higher is a fallback, undefined does not run. */
export function platformRank(want: Platform, have: Platform): number | undefined {
  const i = compatiblePlatforms(want).findIndex((c) => samePlatform(c, have));
  return i < 0 ? undefined : i;
}

/** True when an image built for `have` runs on `want` (containerd's `platforms.Only(want).Match(have)`). */
export function platformMatches(want: Platform, have: Platform): boolean {
  return platformRank(want, have) !== undefined;
}

/** Attestation and signature entries of an index (BuildKit writes `unknown/unknown`): never an image to run. */
export function isAttestation(d: Descriptor): boolean {
  return d.platform?.os === "unknown" || d.platform?.architecture === "unknown" || d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest";
}

type ErrorClass = new (code: ErrorCode, message: string, opts?: TsbuildErrorOptions) => TsbuildError;

export interface PickManifestOptions {
  /** How messages name the index ("alpine:3.20", "image.tar: index.json"). */
  what: string;
  /** The error class for "no match": RegistryError for pull, ArchiveError for load. */
  errorClass: ErrorClass;
}

/**
 * Pick the manifest of an index for `want`, as containerd/BuildKit do: the best-ranked compatible platform wins,
 * index order breaks ties, and an entry without a platform is a last resort. No match throws
 * NO_MATCHING_PLATFORM listing the platforms the index does have.
 */
export function pickManifest(manifests: readonly Descriptor[], want: Platform, opts: PickManifestOptions): Descriptor {
  let best: { d: Descriptor; rank: number } | undefined;
  let unlabelled: Descriptor | undefined;
  for (const d of manifests) {
    if (isAttestation(d)) continue;
    if (!d.platform) {
      unlabelled ??= d;
      continue;
    }
    const rank = platformRank(want, d.platform);
    if (rank !== undefined && (best === undefined || rank < best.rank)) best = { d, rank };
  }
  const pick = best?.d ?? unlabelled;
  if (pick) return pick;
  // Listed as the index spells them, so the user recognises them (and can pass one back as --platform).
  const available = [...new Set(manifests.filter((d) => d.platform && !isAttestation(d)).map((d) => formatPlatform(d.platform as Platform)))];
  throw new opts.errorClass(
    "NO_MATCHING_PLATFORM",
    `${opts.what} has no image for ${formatPlatform(normalizePlatform(want))} (it has: ${available.length ? available.join(", ") : "no platform-specific images"})`,
    available.length ? { hint: `choose one with --platform, e.g. --platform ${available[0]}` } : {},
  );
}

/** The platforms an index offers (attestations left out), as the index spells them, in index order. */
export function indexPlatforms(manifests: readonly Descriptor[]): Platform[] {
  return manifests.filter((d) => d.platform && !isAttestation(d)).map((d) => d.platform as Platform);
}

/** File-name form of a platform, as BuildKit's local exporter names per-platform directories: `linux_arm64_v8`. */
export function platformDirName(p: Platform): string {
  return formatPlatform(normalizePlatform(p)).replace(/\//g, "_");
}
