// Sizes and durations as users type them for prune: "10GB", "512MiB", "1.5G"; "24h", "90m", "7d", "1h30m".
// Parsers return undefined on bad input so the CLI can name the flag in its UsageError.

/** The forms parseSize accepts, for error messages and help. */
export const SIZE_FORMS =
  "a byte count with an optional unit: B, kB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB or K/M/G/T (powers of 1024), e.g. 10GB, 512MiB, 1.5G";
/** The forms parseDuration accepts. */
export const DURATION_FORMS = "a number with a unit ms, s, m, h, d or w, or a sequence of them, e.g. 24h, 90m, 7d, 1h30m";

// Decimal units are the ones `tsbuild du` prints (kB, MB, GB), so a printed figure can be pasted back; the
// single letters follow Docker's --memory/--keep-storage (binary).
const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  pib: 1024 ** 5,
};

/** Bytes for "10GB", "512MiB", "1.5G", "4096"; undefined when malformed or negative. Rounded down to whole bytes. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = SIZE_UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** Milliseconds for "24h", "90m", "7d", "1h30m", "1.5h"; undefined when malformed. A bare number is refused (which unit?). */
export function parseDuration(text: string): number | undefined {
  const s = text.trim().toLowerCase();
  if (s === "") return undefined;
  const part = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d|w)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    pos = part.lastIndex;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}
