// `--annotation` in buildx's syntax: `KEY=VALUE` (the manifest), `TYPE[,TYPE…]:KEY=VALUE` with the types manifest,
// index, manifest-descriptor and index-descriptor, each optionally for one platform (`manifest[linux/amd64]:K=V`).
import { UsageError } from "../errors.js";
import { formatPlatform, parsePlatform } from "./platform.js";
import type { Platform } from "./types.js";

export const ANNOTATION_TARGETS = ["manifest", "index", "manifest-descriptor", "index-descriptor"] as const;
export type AnnotationTarget = (typeof ANNOTATION_TARGETS)[number];

export interface Annotation {
  target: AnnotationTarget;
  /** Only for the image of this platform; absent: every image. */
  platform?: Platform;
  key: string;
  value: string;
}

const EXAMPLE = "e.g. --annotation org.opencontainers.image.title=app or --annotation index:org.opencontainers.image.vendor=me";

/** One `--annotation` flag: one entry per type it names (buildx's ParseAnnotations). */
export function parseAnnotation(text: string): Annotation[] {
  const eq = text.indexOf("=");
  if (eq < 0) throw new UsageError("BAD_FLAG_VALUE", `--annotation ${JSON.stringify(text)}: expected KEY=VALUE`, { hint: EXAMPLE });
  const left = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const colon = left.indexOf(":");
  const key = colon < 0 ? left : left.slice(colon + 1);
  if (key === "") throw new UsageError("BAD_FLAG_VALUE", `--annotation ${JSON.stringify(text)}: the key is empty`, { hint: EXAMPLE });
  if (colon < 0) return [{ target: "manifest", key, value }];
  return left
    .slice(0, colon)
    .split(",")
    .map((typeText) => {
      const m = /^([a-z-]+)(?:\[([A-Za-z0-9_/.-]+)\])?$/.exec(typeText);
      const target = m?.[1] as AnnotationTarget | undefined;
      if (!m || !target || !ANNOTATION_TARGETS.includes(target))
        throw new UsageError("BAD_FLAG_VALUE", `--annotation ${JSON.stringify(text)}: unknown annotation type ${JSON.stringify(typeText)}`, {
          hint: `types: ${ANNOTATION_TARGETS.join(", ")}, optionally with a platform, e.g. manifest[linux/amd64]:KEY=VALUE`,
        });
      return { target, ...(m[2] ? { platform: parsePlatform(m[2]) } : {}), key, value };
    });
}

/** The annotations of `target` that apply to an image of `platform` (later flags win), or undefined when none. */
export function annotationsFor(list: readonly Annotation[], target: AnnotationTarget, platform: Platform): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let any = false;
  for (const a of list) {
    if (a.target !== target || (a.platform && formatPlatform(a.platform) !== formatPlatform(platform))) continue;
    out[a.key] = a.value;
    any = true;
  }
  return any ? out : undefined;
}
