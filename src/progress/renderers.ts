// Renderers turn progress events into text: plain (BuildKit's --progress=plain style) and json lines.
import type { Writable } from "node:stream";
import type { ProgressEvent, ProgressSink } from "./events.js";

function formatRange(e: { range?: { file: string; start: { line: number } } }): string {
  return e.range ? ` (${e.range.file}:${e.range.start.line})` : "";
}

/** `#N name` / `#N CACHED` / `#N DONE 0.1s` lines, one step number per node. */
export function plainRenderer(out: Writable, opts: { explain?: boolean } = {}): ProgressSink {
  const numbers = new Map<string, number>();
  const started = new Map<string, string>();
  const number = (node: string): number => {
    let n = numbers.get(node);
    if (n === undefined) {
      n = numbers.size + 1;
      numbers.set(node, n);
    }
    return n;
  };
  return {
    emit(e: ProgressEvent) {
      switch (e.kind) {
        case "step-start": {
          const n = number(e.node);
          started.set(e.node, e.name);
          out.write(`#${n} ${e.name}\n`);
          if (e.cached) out.write(`#${n} CACHED\n`);
          break;
        }
        case "step-log": {
          const n = number(e.node);
          const text = Buffer.from(e.data).toString("utf8");
          for (const line of text.split("\n")) if (line !== "") out.write(`#${n} ${line}\n`);
          break;
        }
        case "step-end": {
          const n = number(e.node);
          const secs = (e.durationMs / 1000).toFixed(1);
          out.write(e.error ? `#${n} ERROR: ${e.error}\n` : `#${n} DONE ${secs}s\n`);
          break;
        }
        case "cache-miss":
          if (opts.explain) for (const r of e.reasons) out.write(`#${number(e.node)} cache miss: ${r}\n`);
          break;
        case "warning":
          out.write(`WARNING${e.rule ? ` ${e.rule}` : ""}: ${e.message}${formatRange(e)}\n`);
          break;
        case "info":
          out.write(`${e.message}\n`);
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

/** Only warnings reach the user (for --quiet). */
export function quietRenderer(err: Writable): ProgressSink {
  return {
    emit(e: ProgressEvent) {
      if (e.kind === "warning") err.write(`WARNING: ${e.message}${formatRange(e)}\n`);
    },
    async close() {},
  };
}
