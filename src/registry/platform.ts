// Platforms (os/arch[/variant]): parsing `--platform`, the host's platform, normalising architecture aliases, and
// choosing one manifest of an index the way containerd's platform matcher does.
import { arch as nodeArch } from "node:process";
import { RegistryError, UsageError } from "../errors.js";
import type { Descriptor, Platform } from "../image/types.js";

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: "amd64" },
  "x86-64": { architecture: "amd64" },
  x64: { architecture: "amd64" },
  aarch64: { architecture: "arm64" },
  armhf: { architecture: "arm", variant: "v7" },
  armel: { architecture: "arm", variant: "v6" },
  i386: { architecture: "386" },
  i686: { architecture: "386" },
  ia32: { architecture: "386" },
  ppc64: { architecture: "ppc64le" },
};

/** Default variants: `arm64` means `arm64/v8`, `arm` means `arm/v7` (what containerd assumes). */
const DEFAULT_VARIANT: Record<string, string> = { arm64: "v8", arm: "v7" };

/** Canonical form: lower case, aliases resolved, the default variant filled in for arm and arm64. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  const alias = ARCH_ALIASES[architecture];
  if (alias) {
    architecture = alias.architecture;
    variant ??= alias.variant;
  }
  if (architecture === "arm64" && (variant === "8" || variant === "v8")) variant = "v8";
  if (architecture === "arm" && variant !== undefined && /^\d$/.test(variant)) variant = `v${variant}`;
  variant ??= DEFAULT_VARIANT[architecture];
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  return out;
}

/** `linux/arm64`, `linux/arm/v7`, `linux/amd64`; the os alone is not enough (docker requires os/arch too). */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().split("/");
  const bad = (why: string) =>
    new UsageError("INVALID_PLATFORM", `invalid platform ${JSON.stringify(spec)}: ${why}`, { hint: "platforms look like os/arch[/variant], e.g. linux/amd64 or linux/arm/v7" });
  if (parts.length < 2 || parts.length > 3) throw bad("expected os/arch or os/arch/variant");
  if (parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) throw bad("each part must be letters, digits, '.', '_' or '-'");
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** The platform this process runs on, as an image platform (always linux: tsbuild runs linux containers). */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", loong64: "loong64", mips64el: "mips64le" };
  const architecture = archMap[nodeArch] ?? nodeArch;
  // Node does not expose the ARM level directly; its build config does (arm_version 6/7).
  const armVersion = (process.config.variables as Record<string, unknown>)["arm_version"];
  const variant = architecture === "arm" && (typeof armVersion === "string" || typeof armVersion === "number") ? `v${armVersion}` : undefined;
  return normalizePlatform({ os: "linux", architecture, ...(variant ? { variant } : {}) });
}

/** True when an image built for `have` runs as `want` (exact os/arch; variants equal after normalisation). */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  return w.variant === undefined || h.variant === undefined || w.variant === h.variant;
}

/**
 * Pick the manifest for `want` among an index's entries. Attestation manifests (platform unknown/unknown) never
 * match. Exact variant matches win over entries without a variant. Throws NO_MATCHING_PLATFORM listing what exists.
 */
export function selectManifest(manifests: readonly Descriptor[], want: Platform, what: string): Descriptor {
  const w = normalizePlatform(want);
  const candidates = manifests.filter((d) => d.platform && d.platform.os !== "unknown" && platformMatches(w, d.platform));
  const exact = candidates.find((d) => d.platform && normalizePlatform(d.platform).variant === w.variant);
  const pick = exact ?? candidates[0];
  if (pick) return pick;
  const available = manifests.filter((d) => d.platform && d.platform.os !== "unknown").map((d) => formatPlatform(d.platform as Platform));
  throw new RegistryError("NO_MATCHING_PLATFORM", `${what} has no image for ${formatPlatform(w)} (it has: ${available.length ? available.join(", ") : "no platform-specific images"})`, {
    hint: available.length ? `choose one with --platform, e.g. --platform ${available[0]}` : undefined,
  });
}
