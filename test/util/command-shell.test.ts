// commandShell: one persistent sh runs each command with its arguments exactly as given, reports status and output,
// answers concurrent callers in order, and ends when idle.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { commandShell } from "../../src/util/command-shell.js";

/** Pids whose command line names this process's command shell. */
async function shellPids(): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  const out: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.includes(`tsbuild-commands-${process.pid}\0`)) out.push(pid);
  }
  return out;
}

describe("commandShell", () => {
  it("reports a command's exit status and its output, stdout and stderr together", async () => {
    const shell = commandShell();
    expect(await shell.run("sh", ["-c", "echo out; echo err >&2; exit 3"])).toEqual({ code: 3, output: "out\nerr" });
    expect(await shell.run("true", [])).toEqual({ code: 0, output: "" });
  });

  it("passes arguments through unchanged: quotes, spaces, $ and globs are not shell syntax", async () => {
    const shell = commandShell();
    const args = ["it's", "a b", "$HOME", "*", "`id`", ""];
    const r = await shell.run("sh", ["-c", 'for a in "$@"; do printf "[%s]" "$a"; done', "sh", ...args]);
    expect(r).toEqual({ code: 0, output: args.map((a) => `[${a}]`).join("") });
  });

  it("answers concurrent callers each with their own command's result", async () => {
    const shell = commandShell();
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => shell.run("sh", ["-c", `echo ${n}; exit ${n}`])));
    expect(results).toEqual([1, 2, 3, 4, 5].map((n) => ({ code: n, output: String(n) })));
  });

  it("reports a missing command as a failure with the shell's message", async () => {
    const r = await commandShell().run("/nonexistent/tsbuild-no-such-tool", []);
    expect(r.code).toBe(127);
    expect(r.output).toContain("tsbuild-no-such-tool");
  });

  it("runs an argument with a newline (which the line protocol cannot carry) directly", async () => {
    expect(await commandShell().run("printf", ["%s", "two\nlines"])).toEqual({ code: 0, output: "two\nlines" });
  });

  it("never hands the command its own pipe as stdin", async () => {
    expect(await commandShell().run("sh", ["-c", "cat; echo done"])).toEqual({ code: 0, output: "done" });
  });

  it("leaves no shell running once this process's last command is long done", async () => {
    const shell = commandShell({ idleMs: 1 });
    // The command runs in a subshell of the shell: its parent's parent.
    const pid = (await shell.run("sh", ["-c", 'cut -d" " -f4 "/proc/$PPID/stat"'])).output;
    expect(pid).toMatch(/^\d+$/);
    // No timing is asserted, only that the idle shell goes (the other tests' shells idle out after 2 s).
    for (let i = 0; i < 100 && (await shellPids()).includes(pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await shellPids()).not.toContain(pid);
    // And a later command starts a new one.
    expect(await shell.run("true", [])).toEqual({ code: 0, output: "" });
  });
});
