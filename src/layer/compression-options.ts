// The compression choices of an export or push (buildx's compression=, compression-level=, force-compression=) and
// their level ranges; kept apart from compress-layer.ts so flag parsing loads no zlib or child_process.
import { UsageError } from "../errors.js";

export type LayerCompressionFormat = "gzip" | "zstd";

/** What an export or push does to local (uncompressed) layers. */
export interface LayerCompressionChoice {
  compression: LayerCompressionFormat | "uncompressed";
  level?: number;
  /** Compress again even when a cached compressed form exists. */
  force?: boolean;
}

export const DEFAULT_LEVEL: Readonly<Record<LayerCompressionFormat, number>> = { gzip: 6, zstd: 3 };
export const LEVEL_RANGE: Readonly<Record<LayerCompressionFormat, readonly [number, number]>> = { gzip: [0, 9], zstd: [1, 22] };

/** Check a level for a format; UsageError BAD_FLAG_VALUE naming `what` (e.g. "--output … compression-level"). */
export function checkLevel(format: LayerCompressionFormat, level: number, what: string): void {
  const [lo, hi] = LEVEL_RANGE[format];
  if (!Number.isInteger(level) || level < lo || level > hi)
    throw new UsageError("BAD_FLAG_VALUE", `${what}: ${Number.isInteger(level) ? `${level} is not a ${format} level` : `not a whole number`}`, {
      hint: `${format} levels run from ${lo} to ${hi}`,
    });
}
