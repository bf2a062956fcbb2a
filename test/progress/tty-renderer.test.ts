// The TTY progress view: output is replayed through a small terminal model (cursor-up, erase, auto-wrap,
// bounded screen) so the tests check what a user would see, redraw arithmetic included.
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { ProgressEvent } from "../../src/progress/events.js";
import { applyEvent, createTtyState, liveFrame, sanitizeLogLine, stringWidth, truncate, ttyRenderer } from "../../src/progress/tty-renderer.js";

/** A terminal of `columns` x `rows` cells with scrollback; understands what the renderer may emit. */
class Terminal {
  readonly lines: string[][] = [[]];
  private row = 0;
  private col = 0;
  constructor(
    readonly columns: number,
    readonly rows: number,
  ) {}

  private top(): number {
    return Math.max(0, this.lines.length - this.rows);
  }
  private line(r: number): string[] {
    while (this.lines.length <= r) this.lines.push([]);
    return this.lines[r]!;
  }

  feed(text: string): void {
    for (let i = 0; i < text.length;) {
      const ch = text[i]!;
      if (ch === "\x1b") {
        const m = /^\x1b\[([0-9;]*)([A-Za-z])/.exec(text.slice(i));
        if (!m) throw new Error(`unexpected escape ${JSON.stringify(text.slice(i, i + 8))}`);
        const [all, arg, op] = m;
        if (op === "A") {
          const n = arg === "" ? 1 : Number(arg);
          if (n === 0) throw new Error("ESC[0A is ambiguous across terminals");
          this.row = Math.max(this.top(), this.row - n);
        } else if (op === "K" && arg === "2") {
          this.lines[this.row] = [];
        } else if (op === "J" && (arg === "" || arg === "0")) {
          this.line(this.row).length = Math.min(this.line(this.row).length, this.col);
          this.lines.length = this.row + 1;
        } else if (op !== "m") {
          throw new Error(`unexpected CSI ${JSON.stringify(all)}`);
        }
        i += all!.length;
        continue;
      }
      if (ch === "\n") {
        // A tty's output processing turns "\n" into CR LF.
        this.row++;
        this.col = 0;
        this.line(this.row);
      } else if (ch === "\r") {
        this.col = 0;
      } else {
        const cp = text.codePointAt(i)!;
        const s = String.fromCodePoint(cp);
        if (this.col >= this.columns) {
          // Auto-wrap: a line longer than the terminal spills onto the next row.
          this.row++;
          this.col = 0;
        }
        const l = this.line(this.row);
        while (l.length < this.col) l.push(" ");
        l[this.col++] = s;
        i += s.length;
        continue;
      }
      i++;
    }
  }

  text(): string[] {
    const out = this.lines.map((l) => l.join("").trimEnd());
    while (out.length > 0 && out[out.length - 1] === "") out.pop();
    return out;
  }
}

class FakeTty extends Writable {
  readonly writes: string[] = [];
  readonly term: Terminal;
  constructor(
    readonly columns: number,
    readonly rows: number,
  ) {
    super({ decodeStrings: false });
    this.term = new Terminal(columns, rows);
  }
  override _write(chunk: unknown, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const s = String(chunk);
    this.writes.push(s);
    this.term.feed(s);
    cb();
  }
}

class Clock {
  t = 1_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const enc = new TextEncoder();
const log = (node: string, text: string): ProgressEvent => ({ kind: "step-log", node, stream: "stdout", data: enc.encode(text) });
const start = (node: string, name: string, cached = false): ProgressEvent => ({ kind: "step-start", node, name, cached });
const end = (node: string, durationMs: number, error?: string): ProgressEvent =>
  error === undefined ? { kind: "step-end", node, durationMs } : { kind: "step-end", node, durationMs, error };

/** Wait until the renderer's timer has drawn a frame after `since` writes. */
async function nextFrame(tty: FakeTty, since = tty.writes.length): Promise<void> {
  for (let i = 0; i < 200 && tty.writes.length === since; i++) await sleep(2);
  expect(tty.writes.length, "the timer drew a frame").toBeGreaterThan(since);
}

describe("ttyRenderer", () => {
  it("shows cached, done and failed steps with correct header counts, and failed logs after close", async () => {
    const tty = new FakeTty(80, 40);
    const clock = new Clock();
    const r = ttyRenderer(tty, { now: clock.now, intervalMs: 5, color: false });
    r.emit(start("a", "[stage 1/3] FROM busybox", true));
    r.emit(end("a", 0));
    r.emit(start("b", "[stage 2/3] COPY . ."));
    clock.advance(300);
    r.emit(end("b", 300));
    r.emit(start("c", "[stage 3/3] RUN false"));
    r.emit(start("d", "[other 1/1] RUN sleep 10"));
    clock.advance(100);
    for (let i = 1; i <= 25; i++) r.emit(log("c", `out ${i}\n`));
    clock.advance(1100);
    await nextFrame(tty);
    expect(tty.term.text()[0]).toBe("[+] Building 1.5s (2/4)");
    r.emit(end("c", 200, 'process "/bin/sh -c false" did not complete successfully: exit code: 1'));
    await r.close();

    const screen = tty.term.text();
    expect(screen[0]).toBe("[+] Building 1.5s (3/4)");
    expect(screen[1]).toBe("=> CACHED [stage 1/3] FROM busybox");
    expect(screen[2]).toMatch(/^=> \[stage 2\/3\] COPY \. \. +0\.3s$/);
    expect(screen[3]).toMatch(/^=> ERROR \[stage 3\/3\] RUN false +0\.2s$/);
    expect(screen[4]).toMatch(/^=> CANCELED \[other 1\/1\] RUN sleep 10 +1\.2s$/);
    expect(screen[5]).toBe("------");
    expect(screen[6]).toBe(" > [stage 3/3] RUN false:");
    // The last 20 of 25 lines, with their time since the step started.
    expect(screen.slice(7, 27)).toEqual(Array.from({ length: 20 }, (_, i) => `0.100 out ${i + 6}`));
    expect(screen[27]).toBe("------");
    expect(screen[28]).toContain("ERROR: process");
    expect(screen.join("\n")).not.toContain("out 5\n");
    // Every line of every live frame ended up replaced: the header is on screen exactly once.
    expect(screen.filter((l) => l.startsWith("[+] Building"))).toHaveLength(1);
  });

  it("says FINISHED when every step succeeded", async () => {
    const tty = new FakeTty(80, 24);
    const clock = new Clock();
    const r = ttyRenderer(tty, { now: clock.now, intervalMs: 5, color: false });
    r.emit(start("a", "[1/2] FROM busybox", true));
    r.emit(start("b", "[2/2] RUN true"));
    clock.advance(3200);
    r.emit(end("b", 3100));
    await r.close();
    expect(tty.term.text()).toEqual([
      "[+] Building 3.2s (2/2) FINISHED",
      "=> CACHED [1/2] FROM busybox",
      expect.stringMatching(/^=> \[2\/2\] RUN true {40,}3\.1s$/),
    ]);
  });

  it("shows a running step's live timer and its last six log lines, dimmed and indented", async () => {
    const tty = new FakeTty(60, 30);
    const clock = new Clock();
    const r = ttyRenderer(tty, { now: clock.now, intervalMs: 5, color: false });
    r.emit(start("a", "[stage 2/5] RUN make"));
    for (let i = 1; i <= 10; i++) r.emit(log("a", `line ${i}\n`));
    r.emit(log("a", "partial 11"));
    clock.advance(1300);
    await nextFrame(tty);
    expect(tty.term.text()).toEqual([
      "[+] Building 1.3s (0/1)",
      expect.stringMatching(/^=> \[stage 2\/5\] RUN make {20,}1\.3s$/),
      "     line 6",
      "     line 7",
      "     line 8",
      "     line 9",
      "     line 10",
      "     partial 11",
    ]);
    // The timer keeps running without new events.
    clock.advance(1000);
    await nextFrame(tty);
    expect(tty.term.text()[1]).toMatch(/ 2\.3s$/);
    await r.close();
    // Logs of a step that succeeded are not repeated in the summary.
    expect(tty.term.text().join("\n")).not.toContain("line 10");
  });

  it("truncates long step names and log lines to the terminal width", async () => {
    const tty = new FakeTty(40, 20);
    const clock = new Clock();
    const r = ttyRenderer(tty, { now: clock.now, intervalMs: 5, color: false });
    r.emit(start("a", `[1/1] RUN ${"x".repeat(100)}`));
    r.emit(log("a", `${"y".repeat(150)}\n`));
    clock.advance(500);
    await nextFrame(tty);
    const screen = tty.term.text();
    // Without truncation the terminal model would wrap these onto extra rows.
    expect(screen).toHaveLength(3);
    for (const l of screen) expect(l.length).toBeLessThanOrEqual(40);
    expect(screen[1]).toMatch(/^=> \[1\/1\] RUN x+… +0\.5s$/);
    expect(screen[2]).toMatch(/^ {5}y+…$/);
    await r.close();
  });

  it("close() stops the timer: nothing is written afterwards, not even for new events", async () => {
    const tty = new FakeTty(80, 24);
    const clock = new Clock();
    const r = ttyRenderer(tty, { now: clock.now, intervalMs: 2 });
    r.emit(start("a", "[1/1] RUN sleep 1"));
    await nextFrame(tty);
    await r.close();
    const count = tty.writes.length;
    clock.advance(5000);
    r.emit(log("a", "late\n"));
    await r.close();
    await sleep(40);
    expect(tty.writes.length).toBe(count);
  });

  it("writes nothing when no event arrived", async () => {
    const tty = new FakeTty(80, 24);
    const r = ttyRenderer(tty, { intervalMs: 2 });
    await sleep(20);
    await r.close();
    expect(tty.writes).toEqual([]);
  });

  it("prints warnings with file:line and info messages below the steps", async () => {
    const tty = new FakeTty(80, 24);
    const r = ttyRenderer(tty, { now: new Clock().now, color: false });
    r.emit({
      kind: "warning",
      message: "JSON arguments recommended for CMD",
      rule: "JSONArgsRecommended",
      range: { file: "Dockerfile", start: { line: 7, column: 1 }, end: { line: 7, column: 12 } },
    });
    r.emit(start("a", "[1/1] FROM busybox", true));
    r.emit({ kind: "info", message: "naming to localhost/app:latest" });
    await r.close();
    expect(tty.term.text()).toEqual([
      "[+] Building 0.0s (1/1) FINISHED",
      "=> CACHED [1/1] FROM busybox",
      "WARNING: JSONArgsRecommended: JSON arguments recommended for CMD (Dockerfile:7)",
      "naming to localhost/app:latest",
    ]);
  });

  it("shows cache-miss reasons in the summary only when explaining", async () => {
    const events: ProgressEvent[] = [
      start("a", "[1/2] FROM busybox", true),
      { kind: "cache-miss", node: "b", reasons: ["file changed: src/main.c"] },
      start("b", "[2/2] COPY . ."),
      end("b", 100),
    ];
    const run = async (explain: boolean): Promise<string[]> => {
      const tty = new FakeTty(80, 24);
      const r = ttyRenderer(tty, { now: new Clock().now, color: false, explain });
      for (const e of events) r.emit(e);
      await r.close();
      return tty.term.text();
    };
    const explained = await run(true);
    expect(explained[2]).toMatch(/^=> \[2\/2\] COPY \. \. +0\.1s$/);
    expect(explained[3]).toBe("     ↳ file changed: src/main.c");
    expect((await run(false)).join("\n")).not.toContain("src/main.c");
  });

  it("colours by default and not when NO_COLOR is set", async () => {
    const run = async (opts: { env: Record<string, string> }): Promise<string> => {
      const tty = new FakeTty(80, 24);
      const r = ttyRenderer(tty, { now: new Clock().now, ...opts });
      r.emit(start("a", "[1/1] RUN false"));
      r.emit(end("a", 10, "exit code: 1"));
      await r.close();
      return tty.writes.join("");
    };
    expect(await run({ env: {} })).toContain("\x1b[31m=> ERROR");
    expect(await run({ env: { NO_COLOR: "1" } })).not.toMatch(/\x1b\[\d+m/);
  });

  it("keeps every frame of a 200-step build with logs within the terminal height", async () => {
    const rows = 24;
    const tty = new FakeTty(80, rows);
    const clock = new Clock();
    const r = ttyRenderer(tty, { now: clock.now, intervalMs: 1, color: true, env: {} });
    let previous: string | undefined;
    for (let i = 0; i < 200; i++) {
      // Two steps run at once, each printing more lines than fit; every seventh is a cache hit.
      r.emit(start(`n${i}`, `[stage ${i + 1}/200] RUN ./step.sh ${i}`, i % 7 === 0));
      if (i % 7 === 0) continue;
      for (let j = 0; j < 9; j++) r.emit(log(`n${i}`, `step ${i} output ${j} ${"z".repeat(j * 15)}\n`));
      clock.advance(40);
      if (i % 10 === 3) await nextFrame(tty);
      if (previous !== undefined) r.emit(end(previous, 100));
      previous = `n${i}`;
    }
    r.emit(end(previous!, 100));
    await nextFrame(tty);
    const frames = tty.writes.length;
    expect(frames).toBeGreaterThanOrEqual(15);
    for (const w of tty.writes) {
      const lines = w.split("\n").length - 1;
      expect(lines).toBeLessThanOrEqual(rows - 2);
    }
    // The last live frame: header, then the most recent finished steps.
    const live = tty.term.text();
    expect(live[0]).toBe("[+] Building 6.8s (200/200)");
    expect(live).toHaveLength(rows - 2);
    expect(live[live.length - 1]).toMatch(/^=> \[stage 200\/200\] RUN \.\/step\.sh 199 +0\.1s$/);

    await r.close();
    const screen = tty.term.text();
    expect(screen.filter((l) => l.startsWith("[+] Building"))).toHaveLength(1);
    const stepLines = screen.filter((l) => l.startsWith("=> "));
    expect(stepLines).toHaveLength(200);
    expect(new Set(stepLines).size).toBe(200);
    expect(stepLines.filter((l) => l.startsWith("=> CACHED "))).toHaveLength(29);
  });
});

describe("liveFrame", () => {
  it("keeps running steps and their logs and the most recent finished steps when space is short", () => {
    const state = createTtyState(0);
    for (let i = 0; i < 50; i++) {
      applyEvent(state, start(`n${i}`, `step ${i}`), i);
      if (i !== 3 && i !== 40) applyEvent(state, end(`n${i}`, 1), i + 1);
    }
    for (let j = 0; j < 10; j++) applyEvent(state, log("n3", `log ${j}\n`), 60);
    const frame = liveFrame(state, 100, { columns: 80, rows: 20, color: false });
    expect(frame).toHaveLength(18);
    expect(frame[0]).toBe("[+] Building 0.1s (48/50)");
    const names = frame
      .slice(1)
      .filter((l) => l.startsWith("=> "))
      .map((l) => l.replace(/ +\d+\.\ds$/, ""));
    // Running steps 3 and 40 stay; the rest are the newest finished steps, all in start order.
    expect(names[0]).toBe("=> step 3");
    expect(names).toContain("=> step 40");
    expect(names[names.length - 1]).toBe("=> step 49");
    expect(names).not.toContain("=> step 4");
    expect(frame.filter((l) => l.startsWith("     log"))).toEqual(["log 4", "log 5", "log 6", "log 7", "log 8", "log 9"].map((l) => `     ${l}`));
  });

  it("never exceeds rows - 2 lines even when more steps run than fit", () => {
    const state = createTtyState(0);
    for (let i = 0; i < 30; i++) {
      applyEvent(state, start(`n${i}`, `step ${i}`), 0);
      applyEvent(state, log(`n${i}`, "a\nb\nc\n"), 0);
    }
    for (const rows of [1, 3, 10, 24]) {
      expect(liveFrame(state, 0, { columns: 80, rows, color: false }).length).toBeLessThanOrEqual(Math.max(2, rows - 2));
    }
  });
});

describe("text helpers", () => {
  it("strips escapes and control characters from log lines and keeps what follows a carriage return", () => {
    expect(sanitizeLogLine("\x1b[32mgreen\x1b[0m done")).toBe("green done");
    expect(sanitizeLogLine(" 10%\r 50%\r100%")).toBe("100%");
    expect(sanitizeLogLine("windows line\r")).toBe("windows line");
    expect(sanitizeLogLine("a\tb")).toBe("a       b");
    expect(sanitizeLogLine("\x1b]0;title\x07bell\x07")).toBe("bell");
  });

  it("handles progress bars and UTF-8 split across chunks", async () => {
    const tty = new FakeTty(80, 24);
    const r = ttyRenderer(tty, { now: new Clock().now, intervalMs: 2, color: false });
    r.emit(start("a", "[1/1] RUN fetch"));
    const bytes = enc.encode("héllo\n 10%\r 90%");
    r.emit({ kind: "step-log", node: "a", stream: "stdout", data: bytes.slice(0, 2) });
    r.emit({ kind: "step-log", node: "a", stream: "stdout", data: bytes.slice(2) });
    await nextFrame(tty);
    expect(tty.term.text().slice(2)).toEqual(["     héllo", "      90%"]);
    await r.close();
  });

  it("measures and truncates wide characters by terminal cells", () => {
    expect(stringWidth("日本語")).toBe(6);
    expect(stringWidth("e\u0301")).toBe(1);
    expect(truncate("日本語テキスト", 7)).toBe("日本語…");
    expect(stringWidth(truncate("日本語テキスト", 7))).toBeLessThanOrEqual(7);
    expect(truncate("short", 10)).toBe("short");
  });
});
