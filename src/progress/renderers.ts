// Renderers turn progress events into text: plain (BuildKit's --progress=plain style) and json lines.
import type { Writable } from "node:stream";
import type { ProgressEvent, ProgressSink } from "./events.js";
import { createLineBuffer } from "./line-buffer.js";

function formatRange(e: { range?: { file: string; start: { line: number } } }): string {
  return e.range ? ` (${e.range.file}:${e.range.start.line})` : "";
}

/** Seconds since the step started, as BuildKit prints them before each log line ("0.123"). */
function stamp(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

/**
 * BuildKit's --progress=plain: `#N [stage k/n] RUN …`, `#N 0.123 line` (whole lines only, each once), `#N DONE 0.1s`
 * or `#N ERROR: …`. Config-only steps (folded) print nothing unless they fail.
 */
export function plainRenderer(out: Writable, opts: { explain?: boolean; now?: () => number } = {}): ProgressSink {
  const now = opts.now ?? Date.now;
  const numbers = new Map<string, number>();
  const steps = new Map<string, { name: string; startedAt: number; folded: boolean; shown: boolean }>();
  const lines = createLineBuffer();
  const number = (node: string): number => {
    let n = numbers.get(node);
    if (n === undefined) {
      n = numbers.size + 1;
      numbers.set(node, n);
    }
    return n;
  };
  /** The step's header line, printed once, when the step first has something to show. */
  const show = (node: string): number => {
    const n = number(node);
    const s = steps.get(node);
    if (s && !s.shown) {
      s.shown = true;
      out.write(`#${n} ${s.name}\n`);
    }
    return n;
  };
  const writeLines = (node: string, text: string[]) => {
    if (text.length === 0) return;
    const n = show(node);
    const at = stamp(now() - (steps.get(node)?.startedAt ?? now()));
    for (const line of text) out.write(`#${n} ${at} ${line}\n`);
  };
  return {
    emit(e: ProgressEvent) {
      switch (e.kind) {
        case "step-start": {
          steps.set(e.node, { name: e.name, startedAt: now(), folded: e.folded === true, shown: false });
          if (e.folded) break;
          const n = show(e.node);
          if (e.cached) out.write(`#${n} CACHED\n`);
          break;
        }
        case "step-log":
          writeLines(e.node, lines.push(e.node, e.stream, e.data));
          break;
        case "step-end": {
          writeLines(e.node, lines.flush(e.node));
          const s = steps.get(e.node);
          if (s?.folded && !e.error) break;
          const n = show(e.node);
          const secs = (e.durationMs / 1000).toFixed(1);
          out.write(e.error ? `#${n} ERROR: ${e.error}\n` : `#${n} DONE ${secs}s\n`);
          break;
        }
        case "cache-miss":
          if (opts.explain) for (const r of e.reasons) out.write(`#${show(e.node)} cache miss: ${r}\n`);
          break;
        case "warning":
          out.write(`WARNING${e.rule ? ` ${e.rule}` : ""}: ${e.message}${formatRange(e)}\n`);
          break;
        case "info":
          out.write(`${e.message}\n`);
          break;
        default:
          // plan and step-progress: nothing to add to a log.
          break;
      }
    },
    async close() {},
  };
}

/** One JSON object per line; log data as UTF-8 text. */
export function jsonRenderer(out: Writable): ProgressSink {
  return {
    emit(e: ProgressEvent) {
      const obj = e.kind === "step-log" ? { ...e, data: Buffer.from(e.data).toString("utf8") } : e;
      out.write(JSON.stringify({ time: new Date().toISOString(), ...obj }) + "\n");
    },
    async close() {},
  };
}

/** Log lines a quiet build keeps per step, printed only if the step fails. */
const QUIET_TAIL = 10;

/**
 * Warnings, and for a failed step its last output lines in BuildKit's box (for --quiet: nothing else showed
 * them); everything else stays silent.
 */
export function quietRenderer(err: Writable): ProgressSink {
  const lines = createLineBuffer();
  const tails = new Map<string, { name: string; lines: string[] }>();
  const keep = (node: string, text: string[]) => {
    const t = tails.get(node);
    if (!t) return;
    t.lines.push(...text);
    if (t.lines.length > QUIET_TAIL) t.lines.splice(0, t.lines.length - QUIET_TAIL);
  };
  return {
    emit(e: ProgressEvent) {
      switch (e.kind) {
        case "warning":
          err.write(`WARNING: ${e.message}${formatRange(e)}\n`);
          break;
        case "step-start":
          tails.set(e.node, { name: e.name, lines: [] });
          break;
        case "step-log":
          keep(e.node, lines.push(e.node, e.stream, e.data));
          break;
        case "step-end": {
          keep(e.node, lines.flush(e.node));
          const t = tails.get(e.node);
          tails.delete(e.node);
          if (e.error && t && t.lines.length > 0) err.write(["------", ` > ${t.name}:`, ...t.lines, "------"].join("\n") + "\n");
          break;
        }
        default:
          break;
      }
    },
    async close() {},
  };
}
