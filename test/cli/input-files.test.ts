// Files a user points tsbuild at (Dockerfile, .dockerignore, $DOCKER_CONFIG/config.json) must be regular files of
// sane size: a FIFO, a directory or a 67 MB file is a clear error naming the path, never a hang (a FIFO used to block
// an open in libuv's pool, deaf to SIGTERM) or an exhausted heap. Run as real processes, each with a deadline.
import { spawn, execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, tempDir } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;

beforeAll(async () => {
  dir = await tempDir("tsbuild-inputs-");
  root = join(dir.path, "store");
});
afterAll(async () => {
  await dir?.cleanup();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

/** The built CLI as a process; killed (and reported as a hang) after `deadlineMs`. */
function cli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; deadlineMs?: number; keepStdinOpen?: boolean; onSpawn?: (kill: (s: NodeJS.Signals) => void) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [BIN, ...args], { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.stdout.resume();
    if (!opts.keepStdinOpen) child.stdin.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.deadlineMs ?? 10_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: Date.now() - t0 });
    });
    opts.onSpawn?.((s) => child.kill(s));
  });
}

async function project(name: string, files: Record<string, string | "fifo" | "dir">): Promise<string> {
  const p = join(dir.path, name);
  await mkdir(p, { recursive: true });
  for (const [f, content] of Object.entries(files)) {
    if (content === "fifo") execFileSync("mkfifo", [join(p, f)]);
    else if (content === "dir") await mkdir(join(p, f));
    else await writeFile(join(p, f), content);
  }
  return p;
}

describe("input files that are not regular files", () => {
  it("a FIFO as the Dockerfile (build, parse, check)", async () => {
    const p = await project("fifo-dockerfile", { Dockerfile: "fifo" });
    for (const args of [
      ["build", "--root", root, p],
      ["parse", p],
      ["check", p],
    ]) {
      const r = await cli(args);
      expect(r.signal, `${args[0]} hung`).toBeNull();
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the Dockerfile .*Dockerfile is a named pipe \(FIFO\), not a regular file \[INPUT_NOT_A_FILE\]/);
    }
  }, 40_000);

  it("a FIFO as -f, and a directory as the Dockerfile", async () => {
    const p = await project("dir-dockerfile", { Dockerfile: "dir", "other.Dockerfile": "fifo" });
    let r = await cli(["build", "--root", root, "-f", join(p, "other.Dockerfile"), p]);
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/other\.Dockerfile is a named pipe/);
    r = await cli(["build", "--root", root, p]);
    expect(r.stderr).toMatch(/Dockerfile is a directory, not a regular file \[INPUT_NOT_A_FILE\]/);
  }, 20_000);

  it("a FIFO as .dockerignore and as <Dockerfile>.dockerignore", async () => {
    const p = await project("fifo-ignore", { Dockerfile: "FROM scratch\n", ".dockerignore": "fifo" });
    let r = await cli(["build", "--root", root, p]);
    expect(r.signal, "build hung").toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the \.dockerignore file .*\.dockerignore is a named pipe \(FIFO\)/);
    const q = await project("fifo-ignore2", { Dockerfile: "FROM scratch\n", "Dockerfile.dockerignore": "fifo" });
    r = await cli(["build", "--root", root, q]);
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/Dockerfile\.dockerignore is a named pipe/);
  }, 20_000);

  it("a FIFO as $DOCKER_CONFIG/config.json", async () => {
    const cfg = await project("docker-config", { "config.json": "fifo" });
    const r = await cli(["logout", "localhost:5000"], { env: { ...process.env, DOCKER_CONFIG: cfg } });
    expect(r.signal, "logout hung").toBeNull();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the Docker config file .*config\.json is a named pipe \(FIFO\), not a regular file \[CREDENTIALS_UNREADABLE\]/);
  }, 20_000);
});

describe("input files that are too large", () => {
  it("a 67 MB .dockerignore is an error naming the file and its size (used to exhaust the heap)", async () => {
    const line = "some/dir/pattern-*.txt\n";
    const p = await project("huge-ignore", { Dockerfile: "FROM scratch\n", ".dockerignore": line.repeat(Math.ceil((67 * 1024 * 1024) / line.length)) });
    const r = await cli(["build", "--root", root, p], { deadlineMs: 20_000 });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the \.dockerignore file .*\.dockerignore is 67\.0 MiB, more than the 4\.0 MiB tsbuild reads \[INPUT_TOO_LARGE\]/);
  }, 30_000);

  it("an 11 MiB Dockerfile", async () => {
    const p = await project("huge-dockerfile", { Dockerfile: "FROM scratch\n" + "# comment\n".repeat(1.1 * 1024 * 1024) });
    const r = await cli(["build", "--root", root, p]);
    expect(r.stderr).toMatch(/the Dockerfile .*Dockerfile is 11\.0 MiB, more than the 10\.0 MiB tsbuild reads \[INPUT_TOO_LARGE\]/);
  }, 20_000);
});

describe("-f - (stdin)", () => {
  it("still reads the Dockerfile from standard input", async () => {
    const p = await project("stdin-ok", {});
    const r = await new Promise<Run>((resolve) => {
      const t0 = Date.now();
      const child = spawn(process.execPath, [BIN, "build", "-q", "--root", root, "-f", "-", p], { stdio: ["pipe", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.stdout.resume();
      child.stdin.end("FROM scratch\nLABEL from=stdin\n");
      child.on("close", (code, signal) => resolve({ code, signal, stderr, ms: Date.now() - t0 }));
    });
    expect(r.code, r.stderr).toBe(0);
  }, 20_000);

  it("SIGTERM while it waits for input ends the process promptly with 130", async () => {
    const p = await project("stdin-wait", {});
    let killer: ((s: NodeJS.Signals) => void) | undefined;
    const running = cli(["build", "--root", root, "-f", "-", p], { keepStdinOpen: true, onSpawn: (k) => (killer = k) });
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    killer?.("SIGTERM");
    const r = await running;
    expect(r.signal, "the process ignored SIGTERM and was killed at the deadline").toBeNull();
    expect(r.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(3000);
  }, 20_000);
});
