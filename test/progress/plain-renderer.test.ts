// The plain and quiet renderers on events as the solver sends them: a line split across chunks is printed once and
// whole, stdout and stderr never share a line, config-only steps are folded, a failed step's lines appear once.
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { ProgressEvent } from "../../src/progress/events.js";
import { createLineBuffer } from "../../src/progress/line-buffer.js";
import { plainRenderer, quietRenderer } from "../../src/progress/renderers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const log = (node: string, data: string | Uint8Array, stream: "stdout" | "stderr" = "stderr"): ProgressEvent => ({
  kind: "step-log",
  node,
  stream,
  data: typeof data === "string" ? enc(data) : data,
});

function capture(): { out: PassThrough; text(): string } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  return { out, text: () => Buffer.concat(chunks).toString() };
}

describe("plainRenderer", () => {
  it("joins a line that arrives in two chunks and prints BuildKit's '#N 0.123 line'", () => {
    const c = capture();
    let t = 1000;
    const r = plainRenderer(c.out, { now: () => t });
    r.emit({ kind: "step-start", node: "a", name: "[2/2] RUN nonexistent-command", cached: false });
    t = 1234;
    r.emit(log("a", "/bin/sh: "));
    r.emit(log("a", "nonexistent-command: not found\n"));
    r.emit({ kind: "step-end", node: "a", durationMs: 300, error: 'process "/bin/sh -c nonexistent-command" did not complete successfully: exit code: 127' });
    expect(c.text()).toBe(
      [
        "#1 [2/2] RUN nonexistent-command",
        "#1 0.234 /bin/sh: nonexistent-command: not found",
        '#1 ERROR: process "/bin/sh -c nonexistent-command" did not complete successfully: exit code: 127',
        "",
      ].join("\n"),
    );
  });

  it("keeps stdout and stderr apart, flushes unterminated lines at step end, and joins split UTF-8", () => {
    const c = capture();
    const r = plainRenderer(c.out, { now: () => 0 });
    r.emit({ kind: "step-start", node: "a", name: "[1/1] RUN x", cached: false });
    const euro = enc("€\n");
    r.emit(log("a", "out-", "stdout"));
    r.emit(log("a", "err-", "stderr"));
    r.emit(log("a", "line\n", "stdout"));
    r.emit(log("a", euro.subarray(0, 1), "stderr"));
    r.emit(log("a", euro.subarray(1), "stderr"));
    r.emit(log("a", "tail without newline", "stdout"));
    r.emit({ kind: "step-end", node: "a", durationMs: 100 });
    expect(c.text().split("\n")).toEqual(["#1 [1/1] RUN x", "#1 0.000 out-line", "#1 0.000 err-€", "#1 0.000 tail without newline", "#1 DONE 0.1s", ""]);
  });

  it("folds config-only steps unless they fail, and ignores plan and progress events", () => {
    const c = capture();
    const r = plainRenderer(c.out, { now: () => 0 });
    r.emit({ kind: "plan", steps: 2 });
    r.emit({ kind: "step-start", node: "f", name: "[1/2] FROM busybox", cached: false });
    r.emit({ kind: "step-end", node: "f", durationMs: 0 });
    r.emit({ kind: "step-start", node: "e", name: "ENV A=1", cached: false, folded: true });
    r.emit({ kind: "step-end", node: "e", durationMs: 0 });
    r.emit({ kind: "step-start", node: "c", name: "[2/2] COPY . .", cached: false });
    r.emit({ kind: "step-progress", node: "c", files: 3, bytes: 30 });
    r.emit({ kind: "step-end", node: "c", durationMs: 0 });
    r.emit({ kind: "step-start", node: "u", name: "USER nobody", cached: false, folded: true });
    r.emit({ kind: "step-end", node: "u", durationMs: 0, error: "bad user" });
    expect(c.text().split("\n")).toEqual([
      "#1 [1/2] FROM busybox",
      "#1 DONE 0.0s",
      "#2 [2/2] COPY . .",
      "#2 DONE 0.0s",
      "#3 USER nobody",
      "#3 ERROR: bad user",
      "",
    ]);
  });
});

describe("quietRenderer", () => {
  it("prints nothing for a good build and the failed step's last lines, once, in BuildKit's box", () => {
    const c = capture();
    const r = quietRenderer(c.out);
    r.emit({ kind: "step-start", node: "a", name: "[1/2] RUN ok", cached: false });
    r.emit(log("a", "fine\n"));
    r.emit({ kind: "step-end", node: "a", durationMs: 1 });
    r.emit({ kind: "step-start", node: "b", name: "[2/2] RUN bad", cached: false });
    r.emit(log("b", "/bin/sh: "));
    r.emit(log("b", "bad: not found\n"));
    r.emit({ kind: "step-end", node: "b", durationMs: 1, error: "exit code: 127" });
    expect(c.text()).toBe("------\n > [2/2] RUN bad:\n/bin/sh: bad: not found\n------\n");
  });
});

describe("createLineBuffer", () => {
  it("holds partial lines per step and stream, drops a CR before the newline, and forgets a flushed step", () => {
    const b = createLineBuffer();
    expect(b.push("a", "stdout", enc("one\r\ntw"))).toEqual(["one"]);
    expect(b.push("b", "stdout", enc("other"))).toEqual([]);
    expect(b.push("a", "stdout", enc("o\n"))).toEqual(["two"]);
    expect(b.push("a", "stderr", enc("e"))).toEqual([]);
    expect(b.flush("a")).toEqual(["e"]);
    expect(b.flush("a")).toEqual([]);
    expect(b.flush("b")).toEqual(["other"]);
  });
});
