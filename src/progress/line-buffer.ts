// Whole lines out of a step's output chunks: a process writes "/bin/sh: " and "x: not found\n" as two chunks, and
// a multi-byte character may straddle them. Partial lines wait per step and stream until their newline or the step's end.
import { TextDecoder } from "node:util";

/** An unterminated line (a progress bar without newlines) is cut to its last this-many characters. */
const MAX_PARTIAL = 8192;

export interface LineBuffer {
  /** The complete lines `data` finishes for this step's stream (without "\n"; a trailing "\r" dropped). */
  push(node: string, stream: "stdout" | "stderr", data: Uint8Array): string[];
  /** What is left of the step's streams (stdout first), as lines; the step's buffers are forgotten. */
  flush(node: string): string[];
}

interface Pending {
  decoder: TextDecoder;
  text: string;
}

export function createLineBuffer(): LineBuffer {
  const pending = new Map<string, Pending>();
  const keyOf = (node: string, stream: string) => `${stream}\u0000${node}`;
  const clean = (line: string) => (line.endsWith("\r") ? line.slice(0, -1) : line);
  return {
    push(node, stream, data) {
      const key = keyOf(node, stream);
      let p = pending.get(key);
      if (!p) {
        p = { decoder: new TextDecoder("utf-8"), text: "" };
        pending.set(key, p);
      }
      const parts = (p.text + p.decoder.decode(data, { stream: true })).split("\n");
      const rest = parts.pop() ?? "";
      p.text = rest.length > MAX_PARTIAL ? rest.slice(-MAX_PARTIAL) : rest;
      return parts.map(clean);
    },
    flush(node) {
      const out: string[] = [];
      for (const stream of ["stdout", "stderr"]) {
        const key = keyOf(node, stream);
        const p = pending.get(key);
        if (!p) continue;
        pending.delete(key);
        const rest = clean(p.text + p.decoder.decode());
        if (rest !== "") out.push(...rest.split("\n").map(clean));
      }
      return out;
    },
  };
}
