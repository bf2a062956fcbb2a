// Interactive terminal progress view (BuildKit's --progress=tty): a header, one line per step with a
// live timer, the last log lines of running steps, redrawn in place; a final summary on close().
// The state and the frame builders are pure; only ttyRenderer() owns the timer and the output.
import { TextDecoder } from "node:util";
import type { ProgressEvent, ProgressSink } from "./events.js";

/** Where the view is drawn: process.stderr, or anything with write() and optional terminal size. */
export interface TtyOutput {
  write(chunk: string): unknown;
  columns?: number;
  rows?: number;
}

export interface TtyRendererOptions {
  /** Clock in milliseconds (tests pass a fake one). Default Date.now. */
  now?: () => number;
  /** Minimum time between redraws. Default 100 ms. */
  intervalMs?: number;
  /** ANSI colours. Default: on unless NO_COLOR is set (non-empty) in `env`. */
  color?: boolean;
  /** Print cache-miss reasons under each missed step in the final summary. */
  explain?: boolean;
  /** Environment consulted for NO_COLOR. Default process.env. */
  env?: Record<string, string | undefined>;
}

/** Log lines shown under a running step in the live view. */
const LIVE_LOG_LINES = 6;
/** Log lines kept per step; a failed step's are printed in full after the build. */
const KEPT_LOG_LINES = 20;
/** An unterminated log line (e.g. a progress bar without newlines) is capped at this many characters. */
const MAX_PARTIAL_LINE = 8192;

export interface LogLine {
  /** Milliseconds since the step started. */
  at: number;
  text: string;
}

export interface StepState {
  node: string;
  name: string;
  cached: boolean;
  startedAt: number;
  /** Set on step-end (or at once for a cache hit). */
  durationMs?: number;
  error?: string;
  /** Order in which steps finished; the live view keeps the most recent ones when space runs out. */
  endSeq?: number;
  logs: LogLine[];
  /** Per stream: text after the last newline, not yet a complete line (stdout and stderr never share a line). */
  partials: Record<LogStream, { text: string; decoder: TextDecoder }>;
  missReasons: string[];
  /** A config-only step (ENV, LABEL, …): left out of the view unless it fails, as BuildKit shows no vertex for it. */
  folded: boolean;
  /** The last step-progress of a long COPY/ADD. */
  progress?: { files: number; bytes: number; totalFiles?: number; totalBytes?: number };
}

type LogStream = "stdout" | "stderr";

export interface TtyState {
  startedAt: number;
  steps: Map<string, StepState>;
  /** Steps in start order. */
  order: StepState[];
  endCount: number;
  warnings: Extract<ProgressEvent, { kind: "warning" }>[];
  infos: string[];
  /** Steps the plan said the build shows (the plan event); the header's total, so it never jumps. */
  plannedSteps: number;
}

export function createTtyState(startedAt: number): TtyState {
  return { startedAt, steps: new Map(), order: [], endCount: 0, warnings: [], infos: [], plannedSteps: 0 };
}

/** Steps the view shows: all but config-only ones that succeeded (or are still running). */
function shown(state: TtyState): StepState[] {
  return state.order.filter((s) => !s.folded || s.error !== undefined);
}

function stepFor(state: TtyState, node: string, now: number): StepState {
  let step = state.steps.get(node);
  if (!step) {
    // Logs or a miss report for a step we never saw start: show it under its node id rather than drop it.
    step = {
      node,
      name: node,
      cached: false,
      startedAt: now,
      logs: [],
      partials: { stdout: { text: "", decoder: new TextDecoder("utf-8") }, stderr: { text: "", decoder: new TextDecoder("utf-8") } },
      missReasons: [],
      folded: false,
    };
    state.steps.set(node, step);
    state.order.push(step);
  }
  return step;
}

function finish(state: TtyState, step: StepState, durationMs: number, error?: string): void {
  if (step.endSeq !== undefined) return;
  step.durationMs = durationMs;
  if (error !== undefined) step.error = error;
  step.endSeq = state.endCount++;
}

/** Fold one event into the state. */
export function applyEvent(state: TtyState, e: ProgressEvent, now: number): void {
  switch (e.kind) {
    case "step-start": {
      const step = stepFor(state, e.node, now);
      step.name = sanitizeName(e.name);
      step.startedAt = now;
      step.cached = e.cached;
      step.folded = e.folded === true;
      // A hit's step-end follows at once; count it as finished already so the header never lags.
      if (e.cached) finish(state, step, 0);
      break;
    }
    case "step-log": {
      const step = stepFor(state, e.node, now);
      const p = step.partials[e.stream];
      appendLog(step, e.stream, p.decoder.decode(e.data, { stream: true }), now - step.startedAt);
      break;
    }
    case "step-end": {
      const step = stepFor(state, e.node, now);
      // The step is over: what is left of each stream is its last line.
      for (const stream of ["stdout", "stderr"] as const) {
        const p = step.partials[stream];
        appendLog(step, stream, p.decoder.decode() + (p.text !== "" ? "\n" : ""), now - step.startedAt);
      }
      if (step.endSeq !== undefined && step.cached && e.error === undefined) break;
      step.endSeq = undefined;
      finish(state, step, e.durationMs, e.error);
      break;
    }
    case "cache-miss":
      stepFor(state, e.node, now).missReasons.push(...e.reasons.map(sanitizeName));
      break;
    case "plan":
      state.plannedSteps = e.steps;
      break;
    case "step-progress": {
      const { files, bytes, totalFiles, totalBytes } = e;
      stepFor(state, e.node, now).progress = {
        files,
        bytes,
        ...(totalFiles !== undefined ? { totalFiles } : {}),
        ...(totalBytes !== undefined ? { totalBytes } : {}),
      };
      break;
    }
    case "warning":
      state.warnings.push(e);
      break;
    case "info":
      state.infos.push(e.message);
      break;
    default:
      // Event kinds added later are ignored until this view learns them.
      break;
  }
}

function appendLog(step: StepState, stream: LogStream, text: string, at: number): void {
  if (text === "") return;
  const parts = (step.partials[stream].text + text).split("\n");
  let partial = parts.pop() ?? "";
  for (const raw of parts) {
    step.logs.push({ at, text: sanitizeLogLine(raw) });
    if (step.logs.length > KEPT_LOG_LINES) step.logs.shift();
  }
  // A carriage return redraws the line (progress bars): only what follows the last one is visible.
  // A trailing "\r" is kept because it may be the first half of a "\r\n" split across chunks.
  const cr = partial.lastIndexOf("\r", partial.length - 2);
  if (cr >= 0) partial = partial.slice(cr + 1);
  if (partial.length > MAX_PARTIAL_LINE) partial = partial.slice(-MAX_PARTIAL_LINE);
  step.partials[stream].text = partial;
}

/** The unterminated last lines of a running step's streams. */
function partialLines(step: StepState): string[] {
  return [step.partials.stdout.text, step.partials.stderr.text].map(sanitizeLogLine).filter((l) => l !== "");
}

/** Log lines of a step including the unterminated last ones. */
function visibleLogs(step: StepState): string[] {
  return [...step.logs.map((l) => l.text), ...partialLines(step)];
}

// CSI, OSC (ended by BEL or ST) and two-character escape sequences.
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/** One log line as plain printable text: no escapes, no control characters, tabs expanded. */
export function sanitizeLogLine(raw: string): string {
  let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
  const cr = line.lastIndexOf("\r");
  if (cr >= 0) line = line.slice(cr + 1);
  line = line.replace(ESCAPES, "").replace(CONTROLS, "");
  if (!line.includes("\t")) return line;
  let out = "";
  let w = 0;
  for (const ch of line) {
    const add = ch === "\t" ? " ".repeat(8 - (w % 8)) : ch;
    out += add;
    w += ch === "\t" ? add.length : charWidth(ch);
  }
  return out;
}

/** Step names and reasons on one line: escapes dropped, newlines and other controls become spaces. */
export function sanitizeName(raw: string): string {
  return raw
    .replace(ESCAPES, "")
    .replace(/[\x00-\x1f\x7f-\x9f]+/g, " ")
    .trim();
}

/** Terminal cells a code point takes: 0 for combining marks, 2 for wide East Asian and emoji. */
function charWidth(ch: string): number {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f) || /\p{Mn}|\p{Me}/u.test(ch)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  )
    return 2;
  return 1;
}

/** Width of plain text (no escapes) in terminal cells. */
export function stringWidth(text: string): number {
  let w = 0;
  for (const ch of text) w += charWidth(ch);
  return w;
}

/** Cut plain text to at most `width` cells, ending with "…" when something was cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (stringWidth(text) <= width) return text;
  let out = "";
  let w = 0;
  for (const ch of text) {
    const cw = charWidth(ch);
    if (w + cw > width - 1) break;
    out += ch;
    w += cw;
  }
  return out + "…";
}

/** `left` and `right` on one line of `width` cells, `right` flush right; `left` is cut to make room. */
function leftRight(left: string, right: string, width: number): string {
  const rw = stringWidth(right);
  if (right === "" || rw + 2 > width) return truncate(left, width);
  const l = truncate(left, width - rw - 1);
  return l + " ".repeat(width - stringWidth(l) - rw) + right;
}

export function formatSeconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

type Style = "none" | "dim" | "blue" | "red" | "yellow";
const SGR: Record<Exclude<Style, "none">, string> = { dim: "2", blue: "34", red: "31", yellow: "33" };

function paint(text: string, style: Style, color: boolean): string {
  return color && style !== "none" && text !== "" ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text;
}

export interface FrameOptions {
  columns: number;
  rows: number;
  color: boolean;
}

/**
 * Usable line width. One cell short of the terminal so that no line ever reaches the last column:
 * terminals differ in whether that wraps, and a wrapped line would break the cursor-up arithmetic.
 */
function lineWidth(columns: number): number {
  return Math.max(1, Math.floor(columns) - 1);
}

function header(state: TtyState, now: number, done: boolean): string {
  const steps = shown(state);
  const finished = steps.filter((s) => s.endSeq !== undefined).length;
  const failed = steps.some((s) => s.error !== undefined);
  // The plan's total, so the count does not grow as stages start; ONBUILD triggers may add to it.
  const total = done && !failed ? steps.length : Math.max(state.plannedSteps, steps.length);
  const suffix = done && !failed && finished === steps.length ? " FINISHED" : "";
  return `[+] Building ${formatSeconds(now - state.startedAt)} (${finished}/${total})${suffix}`;
}

/** "1.5 MB" */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** "120/300 files 1.5 MB/4.0 MB" for a COPY in progress. */
function progressText(p: NonNullable<StepState["progress"]>): string {
  const files = p.totalFiles !== undefined ? `${p.files}/${p.totalFiles} files` : `${p.files} files`;
  const bytes = p.totalBytes !== undefined ? `${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}` : formatBytes(p.bytes);
  return `${files} ${bytes}`;
}

function stepLine(step: StepState, now: number, width: number, color: boolean, closing: boolean): string {
  if (step.cached && step.error === undefined) return paint(truncate(`=> CACHED ${step.name}`, width), "blue", color);
  if (step.error !== undefined) {
    return paint(leftRight(`=> ERROR ${step.name}`, formatSeconds(step.durationMs ?? 0), width), "red", color);
  }
  if (step.durationMs !== undefined) {
    return paint(leftRight(`=> ${step.name}`, formatSeconds(step.durationMs), width), "blue", color);
  }
  // Still running when the view closes: the build was cancelled around it.
  if (closing) return paint(leftRight(`=> CANCELED ${step.name}`, formatSeconds(now - step.startedAt), width), "yellow", color);
  const progress = step.progress ? `${progressText(step.progress)}  ` : "";
  return leftRight(`=> ${step.name}`, `${progress}${formatSeconds(now - step.startedAt)}`, width);
}

function logLine(text: string, width: number, color: boolean): string {
  return paint(truncate(`     ${text}`, width), "dim", color);
}

/**
 * The live view: header, steps in start order, the last log lines under running steps.
 * At most `rows - 2` lines, each narrower than `columns`. When steps do not all fit, the running
 * steps stay and the most recently finished ones fill the rest; log lines share what is left.
 */
export function liveFrame(state: TtyState, now: number, opts: FrameOptions): string[] {
  const width = lineWidth(opts.columns);
  const maxLines = Math.max(2, Math.floor(opts.rows) - 2);
  const lines = [header(state, now, false)];
  let budget = maxLines - 1;

  const steps = shown(state);
  const running = steps.filter((s) => s.endSeq === undefined);
  const finished = steps.filter((s) => s.endSeq !== undefined);
  const shownRunning = running.slice(0, budget);
  budget -= shownRunning.length;

  // Logs are the most useful part of a running build, but keep some finished steps for context.
  const logsOf = new Map(shownRunning.map((s) => [s, visibleLogs(s)] as const));
  const wanted = shownRunning.map((s) => Math.min(LIVE_LOG_LINES, logsOf.get(s)?.length ?? 0));
  let logBudget = budget - Math.min(finished.length, Math.floor(budget / 3));
  const granted = wanted.map(() => 0);
  // Hand out log lines one per step per round so parallel steps share the space fairly.
  for (let progress = true; progress && logBudget > 0;) {
    progress = false;
    for (let i = 0; i < wanted.length && logBudget > 0; i++) {
      if ((granted[i] ?? 0) < (wanted[i] ?? 0)) {
        granted[i] = (granted[i] ?? 0) + 1;
        logBudget--;
        progress = true;
      }
    }
  }
  budget -= granted.reduce((a, b) => a + b, 0);

  const recent = new Set([...finished].sort((a, b) => (b.endSeq ?? 0) - (a.endSeq ?? 0)).slice(0, Math.max(0, budget)));
  const grantedOf = new Map(shownRunning.map((s, i) => [s, granted[i] ?? 0] as const));
  for (const step of steps) {
    const logCount = grantedOf.get(step);
    if (logCount !== undefined) {
      lines.push(stepLine(step, now, width, opts.color, false));
      if (logCount > 0) for (const l of (logsOf.get(step) ?? []).slice(-logCount)) lines.push(logLine(l, width, opts.color));
    } else if (recent.has(step)) {
      lines.push(stepLine(step, now, width, opts.color, false));
    }
  }
  return lines;
}

export interface SummaryOptions {
  columns: number;
  color: boolean;
  explain: boolean;
}

function location(w: Extract<ProgressEvent, { kind: "warning" }>): string {
  return w.range ? ` (${w.range.file}:${w.range.start.line})` : "";
}

/**
 * The final view, printed once: every step, cache-miss reasons when explaining, then the logs of
 * each failed step (BuildKit's `------` boxes), then warnings and info messages.
 */
export function finalSummary(state: TtyState, now: number, opts: SummaryOptions): string[] {
  const width = lineWidth(opts.columns);
  const steps = shown(state);
  const lines = [paint(header(state, now, true), steps.some((s) => s.error !== undefined) ? "none" : "blue", opts.color)];
  for (const step of steps) {
    lines.push(stepLine(step, now, width, opts.color, true));
    if (opts.explain && !step.cached) {
      for (const reason of step.missReasons) lines.push(paint(truncate(`     ↳ ${reason}`, width), "dim", opts.color));
    }
  }
  for (const step of steps) {
    if (step.error === undefined) continue;
    lines.push("------", ` > ${step.name}:`);
    const logs = step.logs.map((l) => `${(l.at / 1000).toFixed(3)} ${l.text}`);
    for (const partial of partialLines(step)) logs.push(`${((step.durationMs ?? 0) / 1000).toFixed(3)} ${partial}`);
    // Log lines print in full here: nothing is redrawn after the summary, so wrapping is harmless.
    lines.push(...logs.slice(-KEPT_LOG_LINES), "------");
    if (step.error !== "") lines.push(paint(`ERROR: ${sanitizeName(step.error)}`, "red", opts.color));
  }
  for (const w of state.warnings) {
    lines.push(paint(`WARNING: ${w.rule ? `${w.rule}: ` : ""}${w.message}${location(w)}`, "yellow", opts.color));
  }
  lines.push(...state.infos);
  return lines;
}

/**
 * Escape sequence that replaces a frame of `previousLines` lines (cursor left below it) with `lines`:
 * cursor up, then each line erased and rewritten, then everything below erased (the frame may shrink).
 */
export function redrawSequence(previousLines: number, lines: readonly string[]): string {
  // "\x1b[0A" moves up one line on most terminals, so never emit it.
  const up = previousLines > 0 ? `\x1b[${previousLines}A` : "";
  return `${up}\r${lines.map((l) => `\x1b[2K${l}\n`).join("")}\x1b[J`;
}

/** The interactive progress view over a terminal stream; redraws at most every `intervalMs`. */
export function ttyRenderer(out: TtyOutput, opts: TtyRendererOptions = {}): ProgressSink {
  const now = opts.now ?? Date.now;
  const intervalMs = opts.intervalMs ?? 100;
  const env = opts.env ?? process.env;
  const color = opts.color ?? !env.NO_COLOR;
  const explain = opts.explain === true;
  const state = createTtyState(now());
  const size = (): { columns: number; rows: number } => ({
    columns: out.columns && out.columns > 0 ? out.columns : 80,
    rows: out.rows && out.rows > 0 ? out.rows : 24,
  });

  let timer: ReturnType<typeof setInterval> | undefined;
  let drawnLines = 0;
  let lastFrame = "";
  let closed = false;

  const draw = (): void => {
    const lines = liveFrame(state, now(), { ...size(), color });
    const frame = lines.join("\n");
    if (frame === lastFrame) return;
    out.write(redrawSequence(drawnLines, lines));
    drawnLines = lines.length;
    lastFrame = frame;
  };

  return {
    emit(e: ProgressEvent) {
      if (closed) return;
      applyEvent(state, e, now());
      if (timer === undefined) {
        timer = setInterval(draw, intervalMs);
        // The view must never keep the process alive on its own.
        timer.unref();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      if (state.order.length === 0 && state.warnings.length === 0 && state.infos.length === 0 && drawnLines === 0) return;
      const lines = finalSummary(state, now(), { columns: size().columns, color, explain });
      out.write(redrawSequence(drawnLines, lines));
      drawnLines = 0;
    },
  };
}
