// Inputs several commands share: --build-arg values, the Dockerfile (located by context/locate-dockerfile.ts) or
// standard input, and --root.
import type { Readable } from "node:stream";
import { resolve } from "node:path";
import { AbortError, BuildError, UsageError } from "../errors.js";
import { MAX_DOCKERFILE_BYTES } from "../fs/read-input.js";
import { checkOutputDir } from "../store/output-file.js";
import { flagString, type ParsedArgs } from "./args.js";

/** `K=V` pairs; a bare `K` takes its value from the environment (skipped when unset), as docker build does. */
export function parseBuildArgs(values: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values) {
    const eq = kv.indexOf("=");
    if (eq === 0) throw new UsageError("BAD_FLAG_VALUE", `--build-arg ${JSON.stringify(kv)}: missing name before =`);
    if (eq < 0) {
      const v = env[kv];
      if (v !== undefined) out[kv] = v;
    } else out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/**
 * `-f -`: the Dockerfile from standard input, read asynchronously so Ctrl-C/SIGTERM end a read that waits for
 * input (a synchronous read of fd 0 blocks the event loop, and with it the signal handlers), bounded like a file.
 */
export async function readDockerfileFromStdin(stdin: Readable, signal?: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  return new Promise<string>((resolvePromise, reject) => {
    const done = (err?: Error) => {
      stdin.off("data", onData).off("end", onEnd).off("error", onError);
      signal?.removeEventListener("abort", onAbort);
      // Let a pipe that still has a writer stop holding the process open.
      stdin.pause();
      if (err) {
        stdin.destroy();
        reject(err);
      } else resolvePromise(Buffer.concat(chunks, total).toString("utf8"));
    };
    const onData = (c: Buffer | string) => {
      const b = typeof c === "string" ? Buffer.from(c) : c;
      chunks.push(b);
      total += b.length;
      if (total > MAX_DOCKERFILE_BYTES)
        done(
          new BuildError(
            "INPUT_TOO_LARGE",
            `the Dockerfile on standard input is more than ${MAX_DOCKERFILE_BYTES / (1024 * 1024)} MiB, the most tsbuild reads`,
          ),
        );
    };
    const onEnd = () => done();
    const onError = (e: Error) => done(new BuildError("INPUT_UNREADABLE", `cannot read the Dockerfile from standard input: ${e.message}`, { cause: e }));
    const onAbort = () => done(new AbortError());
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    stdin.on("data", onData).once("end", onEnd).once("error", onError);
    stdin.resume();
  });
}

/**
 * The --root flag, checked: not empty, and a directory (or creatable below one), so a typo gives a message naming
 * the flag instead of an errno from deep inside the store. Undefined when not given (the default store is used).
 */
export async function storeRootFlag(args: ParsedArgs): Promise<string | undefined> {
  const root = flagString(args, "root");
  if (root === undefined) return undefined;
  if (root.trim() === "") throw new UsageError("BAD_FLAG_VALUE", "--root needs a directory, not an empty string");
  await checkOutputDir(resolve(root), { what: "--root" });
  return root;
}
