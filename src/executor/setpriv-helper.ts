// The host's util-linux `setpriv`, made runnable inside a bwrap sandbox whose rootfs has no libc of ours: the binary,
// its libraries and the dynamic loader are bound read-only under /dev/.tsbuild and started through the loader. It
// shrinks the capability bounding set to Docker's (bwrap as real root cannot) and switches to the RUN's user with
// its supplementary groups.
import { runQuiet } from "../util/run.js";
import { basename } from "node:path";
import { findOnPath } from "./select-executor.js";

const DIR = "/dev/.tsbuild";

export interface SetprivHelper {
  /** [host path, sandbox path] pairs to bind read-only. */
  binds: [string, string][];
  /** The argv prefix that runs `setpriv` with `args`, then the command after it. */
  command(args: string[]): string[];
}

/** Parses `ldd` output: the libraries (`name => /path`) and the loader (an absolute path alone on its line). */
export function parseLdd(text: string): { libs: string[]; loader?: string } {
  const libs: string[] = [];
  let loader: string | undefined;
  for (const line of text.split("\n")) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    if (arrow?.[1]) {
      libs.push(arrow[1]);
      continue;
    }
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (bare?.[1]) loader = bare[1];
  }
  return loader === undefined ? { libs } : { libs, loader };
}

async function ldd(path: string): Promise<string | undefined> {
  const r = await runQuiet("ldd", [path]);
  return r.code === 0 ? r.stdout : undefined;
}

/** The helper, or undefined when setpriv or its libraries cannot be found (the caller then keeps bwrap's default). */
export async function findSetprivHelper(): Promise<SetprivHelper | undefined> {
  const setpriv = await findOnPath("setpriv");
  if (!setpriv) return undefined;
  const out = await ldd(setpriv);
  if (out === undefined) return undefined;
  const { libs, loader } = parseLdd(out);
  if (!loader) return undefined;
  const binds: [string, string][] = [
    [loader, `${DIR}/ld.so`],
    [setpriv, `${DIR}/setpriv`],
    ...libs.map((l): [string, string] => [l, `${DIR}/lib/${basename(l)}`]),
  ];
  return {
    binds,
    command: (args) => [`${DIR}/ld.so`, "--library-path", `${DIR}/lib`, `${DIR}/setpriv`, ...args, "--"],
  };
}

/** setpriv's arguments for Docker's capability bounding set and the RUN's user (root stays root). */
export function setprivArgs(caps: readonly string[], user: { uid: number; gid: number; additionalGids?: number[] }): string[] {
  const names = caps.map((c) => `+${c.replace(/^CAP_/, "").toLowerCase()}`);
  const args = [`--bounding-set=-all,${names.join(",")}`];
  if (user.uid !== 0 || user.gid !== 0 || user.additionalGids?.length) {
    args.push(`--regid=${user.gid}`, user.additionalGids?.length ? `--groups=${user.additionalGids.join(",")}` : "--clear-groups", `--reuid=${user.uid}`);
  }
  return args;
}
