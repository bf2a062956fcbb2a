// Runs the CLI in-process (fast) or as the built binary (real process, real exit codes and signals).
import { PassThrough, Readable } from "node:stream";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { main } from "../../src/cli/main.js";
import { mountsUnder, unmount } from "../../src/snapshot/mounts.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes (binary output: `save` without -o). */
  stdoutBytes?: Buffer;
}

export interface InProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** What the command reads on stdin (default: nothing, at once at its end). */
  stdin?: string | Buffer | Readable;
  /** Pretend stdin / stdout are terminals. */
  stdinIsTTY?: boolean;
  stdoutIsTTY?: boolean;
}

export const REPO = resolve(import.meta.dirname, "../..");
export const BIN = join(REPO, "dist/bundle/bin.js");

function collect(): { stream: PassThrough; bytes(): Buffer; text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return { stream, bytes: () => Buffer.concat(chunks), text: () => Buffer.concat(chunks).toString("utf8") };
}

/** In-process: main() with captured output and the given stdin. */
export async function tsbuild(args: string[], opts: InProcessOptions = {}): Promise<CliResult> {
  const out = collect();
  const err = collect();
  const input = opts.stdin;
  const stdin = input instanceof Readable ? input : Readable.from(input === undefined ? [] : [typeof input === "string" ? Buffer.from(input) : input]);
  const code = await main(args, {
    stdout: out.stream,
    stderr: err.stream,
    isTTY: false,
    stdin,
    stdinIsTTY: opts.stdinIsTTY ?? false,
    stdoutIsTTY: opts.stdoutIsTTY ?? false,
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? process.env,
  });
  return { code, stdout: out.text(), stderr: err.text(), stdoutBytes: out.bytes() };
}

/** As a real process from dist/ (built by `npm test`'s pretest). */
export function tsbuildProcess(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.stdin.end(opts.input ?? "");
    child.on("close", (code) => resolvePromise({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/**
 * A fresh temp directory, removed by the returned cleanup — after unmounting anything a build left mounted below it
 * (a test that failed halfway, a killed build), so no test leaves a mount on the machine or deletes through one.
 */
export async function tempDir(prefix = "tsbuild-test-"): Promise<{ path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    cleanup: async () => {
      for (const mp of await mountsUnder(path)) await unmount(mp);
      await rm(path, { recursive: true, force: true });
    },
  };
}
