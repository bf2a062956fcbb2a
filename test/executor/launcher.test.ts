// sandboxLauncher: a command started from a resident shell streams exactly its own stdout and stderr, reports its
// status (128+n for signal n), gets neither the shell's command pipe nor its status pipe, and concurrent commands
// each get a shell of their own.
import { describe, expect, it } from "vitest";
import { sandboxLauncher } from "../../src/executor/launcher.js";

function capture() {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  return {
    io: { stdout: (c: Uint8Array) => out.push(Buffer.from(c)), stderr: (c: Uint8Array) => err.push(Buffer.from(c)) },
    out: () => Buffer.concat(out).toString(),
    err: () => Buffer.concat(err).toString(),
    chunks: () => out.length,
  };
}

describe("sandboxLauncher", () => {
  it("streams the command's output and reports its status", async () => {
    const launcher = sandboxLauncher();
    const c = capture();
    expect(await launcher.run(["sh", "-c", "echo out; printf 'no newline'; echo err >&2; exit 7"], c.io)).toBe(7);
    expect(c.out()).toBe("out\nno newline");
    expect(c.err()).toBe("err\n");
    // The same shell runs the next command; nothing of the first one's output reaches it.
    const d = capture();
    expect(await launcher.run(["printf", "%s", "it's a b"], d.io)).toBe(0);
    expect([d.out(), d.err()]).toEqual(["it's a b", ""]);
  });

  it("passes output that looks like the start of its end marker through", async () => {
    const c = capture();
    const text = "\u001etsbuild-end-\u001e\u001etsbuild";
    expect(await sandboxLauncher().run(["printf", "%s", text], c.io)).toBe(0);
    expect(c.out()).toBe(text);
  });

  it("keeps large output whole", async () => {
    const c = capture();
    expect(await sandboxLauncher().run(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done"], c.io)).toBe(0);
    const lines = c.out().split("\n");
    expect(lines.length).toBe(20001);
    expect(lines[19999]).toBe("line-19999");
  });

  it("reports a command killed by a signal as 128+n", async () => {
    expect(await sandboxLauncher().run(["sh", "-c", "kill -9 $$"], capture().io)).toBe(137);
  });

  it("gives the command /dev/null as stdin and no status pipe", async () => {
    const c = capture();
    expect(await sandboxLauncher().run(["sh", "-c", "cat; echo x >&3 || echo no-fd-3"], c.io)).toBe(0);
    expect(c.out()).toBe("no-fd-3\n");
  });

  it("runs concurrent commands side by side, each with its own output", async () => {
    const launcher = sandboxLauncher();
    const a = capture();
    const b = capture();
    // a waits until b has written its file: they can only both finish when they run at the same time.
    const dir = `/tmp/tsbuild-launcher-test-${process.pid}`;
    const [ra, rb] = await Promise.all([
      launcher.run(["sh", "-c", `while [ ! -e ${dir}-b ]; do sleep 0.01; done; echo a; rm ${dir}-b`], a.io),
      launcher.run(["sh", "-c", `echo b; touch ${dir}-b`], b.io),
    ]);
    expect([ra, rb, a.out(), b.out()]).toEqual([0, 0, "a\n", "b\n"]);
  });

  it("reports a missing command as 127", async () => {
    const c = capture();
    expect(await sandboxLauncher().run(["/nonexistent/tsbuild-no-such-runtime"], c.io)).toBe(127);
    expect(c.err()).toContain("tsbuild-no-such-runtime");
  });
});
