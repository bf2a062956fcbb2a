#!/usr/bin/env node
import { reportError, runCli, defaultIO } from "./main.js";

const argv = process.argv.slice(2);
// An ordinary user's build runs as root of a user namespace of its own (rootless): this process only starts it.
if (process.getuid?.() !== 0 && process.env["TSBUILD_USERNS"] === undefined && argv.length > 0) {
  const userns = await import("./userns-reexec.js");
  if (userns.needsUserNamespace(argv, process.getuid?.() ?? 0, process.env)) {
    const debug = argv.includes("--debug") ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    process.exitCode = await userns
      .runInUserNamespace(argv, debug ? { debug } : {})
      .catch((e: unknown) => reportError(e, defaultIO(), debug !== undefined, false));
  } else await runCli();
} else await runCli();
