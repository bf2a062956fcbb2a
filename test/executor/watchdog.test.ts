// The build's watchdog shell: what a RUN armed runs when tsbuild dies without disarming it (here: a process killed
// with SIGKILL), what was disarmed or closed never runs, and the shell ends with the build.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startWatchdogService } from "../../src/executor/watchdog.js";
import { REPO, tempDir } from "../helpers/cli.js";
import { processesWith, waitFor } from "../helpers/hostile.js";

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir("tsbuild-watchdog-");
});
afterAll(async () => {
  await dir?.cleanup();
});

/** The watchdog shells of process `pid` (the service names itself for its owner). */
const shellsOf = async (pid: number) => (await processesWith(`tsbuild-watchdog-${pid}`)).filter((p) => p.args.endsWith(`tsbuild-watchdog-${pid}`));
const shellGone = (pid: number) => waitFor(async () => (await shellsOf(pid)).length === 0, 10_000);

/** A node process that arms `a` (two commands) and `b`, disarms `b`, then is killed with SIGKILL or closes the service. */
function owner(mode: "kill" | "close", base: string): Promise<number> {
  const script = `
    import { startWatchdogService } from ${JSON.stringify(join(REPO, "dist/executor/watchdog.js"))};
    const [mode, base] = process.argv.slice(1);
    const s = startWatchdogService();
    const a = s.arm([["sh", "-c", 'printf "%s" "$1" > "$0"', base + ".a", "it's a \\"quoted\\" $HOME"], ["touch", base + ".b"]]);
    s.arm([["touch", base + ".c"]]).disarm();
    if (mode === "close") { a.disarm(); s.close(); } else process.kill(process.pid, "SIGKILL");`;
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ["--input-type=module", "-e", script, mode, base], { stdio: "ignore" });
    c.on("error", reject);
    c.on("close", () => resolve(c.pid ?? -1));
  });
}

describe("watchdog service", () => {
  test("the commands still armed run, in order and quoted, when the owner is killed; disarmed ones never", async () => {
    const base = join(dir.path, "killed");
    const pid = await owner("kill", base);
    expect(await waitFor(async () => existsSync(`${base}.b`), 10_000)).toBe(true);
    expect(await shellGone(pid)).toBe(true);
    const { readFile } = await import("node:fs/promises");
    expect(await readFile(`${base}.a`, "utf8")).toBe(`it's a "quoted" $HOME`);
    expect(existsSync(`${base}.c`)).toBe(false);
  });

  test("a closed service runs nothing and its shell is gone", async () => {
    const base = join(dir.path, "closed");
    expect(await shellGone(await owner("close", base))).toBe(true);
    expect(existsSync(`${base}.a`) || existsSync(`${base}.b`) || existsSync(`${base}.c`)).toBe(false);
  });

  test("in process: arming and closing leave no shell behind", async () => {
    const s = startWatchdogService();
    const marker = join(dir.path, "inproc");
    const w = s.arm([["touch", marker]]);
    expect(await shellsOf(process.pid)).toHaveLength(1);
    w.disarm();
    w.disarm();
    s.close();
    expect(await shellGone(process.pid)).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });
});
