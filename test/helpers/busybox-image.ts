// A busybox base image as a docker-archive tar, made by scripts/make-busybox-base.sh with umoci and skopeo only
// (independent of tsbuild's code). Built once per test process and cached in a temp dir.
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), "../../scripts/make-busybox-base.sh");
export const BUSYBOX_TAG = "busybox:local";

let cached: Promise<string> | undefined;

async function requireTools(): Promise<void> {
  for (const [tool, check] of [
    ["umoci", "command -v umoci"],
    ["skopeo", "command -v skopeo"],
    ["busybox", "test -x /bin/busybox && /bin/busybox --list-full >/dev/null"],
  ] as const) {
    try {
      await run("sh", ["-c", check]);
    } catch {
      throw new Error(`${tool} is missing or unusable: apt-get install -y umoci skopeo busybox-static`);
    }
  }
}

async function build(): Promise<string> {
  await requireTools();
  const dir = await mkdtemp(join(tmpdir(), "tsbuild-bbimg-"));
  const out = join(dir, "busybox.tar");
  try {
    await run(SCRIPT, [out, BUSYBOX_TAG], { maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`scripts/make-busybox-base.sh failed: ${err.stderr?.trim() || err.message}`);
  }
  return out;
}

/** Returns the path of a docker-archive tar holding busybox:local; with `dir`, a copy is placed there. */
export async function makeBusyboxArchive(dir?: string): Promise<string> {
  cached ??= build();
  const src = await cached.catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  if (dir === undefined) return src;
  await mkdir(dir, { recursive: true });
  const dest = join(dir, "busybox.tar");
  await copyFile(src, dest);
  return dest;
}

/** A store at `root` holding busybox:local, loaded through the CLI (the way a user gets a base image in). */
export async function storeWithBusybox(root: string): Promise<string> {
  const { tsbuild } = await import("./cli.js");
  const loaded = await tsbuild(["load", "--root", root, "-i", await makeBusyboxArchive()]);
  if (loaded.code !== 0) throw new Error(`tsbuild load of busybox:local failed: ${loaded.stderr}`);
  return root;
}
