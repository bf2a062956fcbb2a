// Measuring helpers for the benchmark: run a command under /usr/bin/time for wall time and peak RSS, store sizes
// with `du -sb`, medians, a seeded PRNG for generated fixtures, and number formatting.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const TIME_BIN = "/usr/bin/time";

export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** mulberry32: small, fast, deterministic — the same seed gives the same fixture bytes on every machine. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Run a command to completion and measure it. Wall time is taken around the whole process; peak RSS comes from
 * GNU time (`%M`, the largest resident set of the process and the children it waited for), when installed.
 * Throws with the command's output when it fails, so a broken build can never be timed as a fast one.
 */
export function measured(cmd, args, { env, cwd, input } = {}) {
  const tmp = mkdtempSync(join(tmpdir(), "bench-time-"));
  const rssFile = join(tmp, "rss");
  const useTime = existsSync(TIME_BIN);
  const [file, argv] = useTime ? [TIME_BIN, ["-f", "%M", "-o", rssFile, cmd, ...args]] : [cmd, args];
  try {
    const t0 = performance.now();
    const r = spawnSync(file, argv, { env: { ...process.env, ...env }, cwd, input, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
    const ms = performance.now() - t0;
    if (r.error) throw r.error;
    if (r.status !== 0) {
      const out = `${r.stdout ?? ""}\n${r.stderr ?? ""}`.trim().split("\n").slice(-40).join("\n");
      throw new Error(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}:\n${out}`);
    }
    let rssKB = null;
    if (useTime && existsSync(rssFile)) {
      const v = Number.parseInt(readFileSync(rssFile, "utf8").trim().split("\n").pop() ?? "", 10);
      if (Number.isFinite(v)) rssKB = v;
    }
    return { ms, rssKB, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * `node -e 0` as bin.js run as a program starts node: its shell line defers NODE_EXTRA_CA_CERTS (unless NODE_OPTIONS
 * is set), which Node would otherwise load before any JavaScript (~60 ms for a system bundle).
 */
export const measureNodeFloor = () => measured(process.execPath, ["-e", "0"], { env: process.env.NODE_OPTIONS ? {} : { NODE_EXTRA_CA_CERTS: undefined } });

/** Run a command that must succeed; returns stdout. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, ...opts, env: { ...process.env, ...opts.env } });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}:\n${(r.stderr || r.stdout || "").trim().split("\n").slice(-20).join("\n")}`);
  return r.stdout;
}

export function tryRun(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...opts, env: { ...process.env, ...opts.env } });
  return { ok: !r.error && r.status === 0, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Apparent size in bytes of a directory tree (`du -sb`); 0 when it does not exist. */
export function duBytes(dir) {
  if (!existsSync(dir)) return 0;
  const r = spawnSync("du", ["-sb", dir], { encoding: "utf8" });
  return Number.parseInt((r.stdout ?? "0").split(/\s/)[0] ?? "0", 10) || 0;
}

export function hasCommand(name) {
  return spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).status === 0;
}

export function fmtMs(ms) {
  if (ms == null || Number.isNaN(ms)) return "–";
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function fmtBytes(b) {
  if (b == null || Number.isNaN(b)) return "–";
  const a = Math.abs(b);
  if (a < 1024) return `${b} B`;
  if (a < 1024 * 1024) return `${(b / 1024).toFixed(1)} KiB`;
  if (a < 1024 ** 3) return `${(b / 1024 / 1024).toFixed(1)} MiB`;
  return `${(b / 1024 ** 3).toFixed(2)} GiB`;
}

export function fmtRatio(r) {
  if (r == null || !Number.isFinite(r)) return "";
  return r >= 10 ? `×${r.toFixed(0)}` : `×${r.toFixed(2)}`;
}

/** Lazily unmounts every mount under `base` (deepest first): what a peer builder left there. */
export function unmountUnder(base) {
  if (!existsSync("/proc/self/mounts")) return;
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((m) => m && m.startsWith(base));
  for (const m of mounts.reverse()) tryRun("umount", ["-l", m]);
}
