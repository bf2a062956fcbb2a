// The terminal view's step counting and marks: the header's total comes from the plan (it never jumps as stages
// start), config-only steps are folded, a failing step is a red ERROR with its log block, a COPY shows files and bytes.
import { describe, expect, it } from "vitest";
import type { ProgressEvent } from "../../src/progress/events.js";
import { applyEvent, createTtyState, finalSummary, formatBytes, liveFrame, ttyRenderer } from "../../src/progress/tty-renderer.js";

const enc = (s: string) => new TextEncoder().encode(s);
const frame = { columns: 100, rows: 30, color: false };

describe("the header and folded steps", () => {
  it("counts against the plan's total and leaves config-only steps out", () => {
    const s = createTtyState(0);
    applyEvent(s, { kind: "plan", steps: 5 }, 0);
    applyEvent(s, { kind: "step-start", node: "f", name: "[1/3] FROM busybox", cached: false }, 0);
    applyEvent(s, { kind: "step-end", node: "f", durationMs: 0 }, 0);
    applyEvent(s, { kind: "step-start", node: "e", name: "ENV A=1", cached: false, folded: true }, 0);
    applyEvent(s, { kind: "step-end", node: "e", durationMs: 0 }, 0);
    applyEvent(s, { kind: "step-start", node: "r", name: "[2/3] RUN make", cached: false }, 0);
    const live = liveFrame(s, 1000, frame);
    expect(live[0]).toBe("[+] Building 1.0s (1/5)");
    expect(live.some((l) => l.includes("ENV"))).toBe(false);
    expect(live).toContainEqual(expect.stringMatching(/^=> \[2\/3\] RUN make +1\.0s$/));
  });

  it("a folded step that fails is shown", () => {
    const s = createTtyState(0);
    applyEvent(s, { kind: "step-start", node: "u", name: "USER nobody", cached: false, folded: true }, 0);
    applyEvent(s, { kind: "step-end", node: "u", durationMs: 0, error: "unknown user" }, 0);
    expect(finalSummary(s, 0, { columns: 80, color: false, explain: false })).toContainEqual(expect.stringMatching(/^=> ERROR USER nobody +0\.0s$/));
  });
});

describe("a failing step", () => {
  it("is a red ERROR line, its whole lines (stdout and stderr apart) in a log block, and the error in red", async () => {
    let out = "";
    let t = 0;
    const r = ttyRenderer({ write: (c: string) => (out += c), columns: 100, rows: 30 }, { now: () => t, color: true, env: {} });
    r.emit({ kind: "plan", steps: 2 });
    r.emit({ kind: "step-start", node: "f", name: "[1/2] FROM busybox", cached: false });
    r.emit({ kind: "step-end", node: "f", durationMs: 0 });
    r.emit({ kind: "step-start", node: "a", name: "[2/2] RUN nonexistent-command", cached: false });
    t = 120;
    r.emit({ kind: "step-log", node: "a", stream: "stderr", data: enc("/bin/sh: ") });
    r.emit({ kind: "step-log", node: "a", stream: "stdout", data: enc("half") });
    r.emit({ kind: "step-log", node: "a", stream: "stderr", data: enc("nonexistent-command: not found\n") });
    r.emit({ kind: "step-end", node: "a", durationMs: 130, error: 'process "/bin/sh -c nonexistent-command" did not complete successfully: exit code: 127' });
    await r.close();
    // The final summary, without the redraw's line erases.
    out = out.replace(/\x1b\[2K|\x1b\[J|\x1b\[\d+A|\r/g, "");
    expect(out).toContain("\x1b[31m=> ERROR [2/2] RUN nonexistent-command");
    expect(out).toContain("------\n > [2/2] RUN nonexistent-command:\n0.120 /bin/sh: nonexistent-command: not found\n");
    expect(out).toContain("0.120 half\n------");
    expect(out).toContain('\x1b[31mERROR: process "/bin/sh -c nonexistent-command" did not complete successfully: exit code: 127\x1b[0m');
    expect(out).toContain("[+] Building 0.1s (2/2)");
  });
});

describe("COPY progress", () => {
  it("shows files and bytes on the running step's line", () => {
    const s = createTtyState(0);
    applyEvent(s, { kind: "step-start", node: "c", name: "[2/2] COPY . /src", cached: false }, 0);
    applyEvent(s, { kind: "step-progress", node: "c", files: 120, bytes: 3_400_000 }, 0);
    expect(liveFrame(s, 2000, frame)[1]).toMatch(/^=> \[2\/2\] COPY \. \/src +120 files 3\.4 MB {2}2\.0s$/);
    applyEvent(s, { kind: "step-progress", node: "c", files: 2, bytes: 10, totalFiles: 4, totalBytes: 20 }, 0);
    expect(liveFrame(s, 2000, frame)[1]).toContain("2/4 files 10 B/20 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1_500_000_000)).toBe("1.5 GB");
  });
});
