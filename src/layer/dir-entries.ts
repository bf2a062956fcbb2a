// The entries of a directory tree as a plain tar carries them (for writeLayerTar): what a cache mount directory
// holds when --cache-to exports it. Parents come before children; hard links within the tree stay hard links.
// What a tar cannot or must not carry is left out and reported: sockets, device nodes, names that are not UTF-8.
import type { BigIntStats } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { hardLinkTracker } from "./hard-links.js";
import type { LayerEntry } from "./types.js";
import { nonUtf8Name } from "./utf8-names.js";

export interface DirEntriesOptions {
  /** Told of each path left out and why. */
  onSkip?(path: string, why: string): void;
  signal?: AbortSignal;
}

/** Every object below `root` (not `root` itself), paths relative to it; regular files name their bytes in `source`. */
export async function dirEntries(root: string, opts: DirEntriesOptions = {}): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  const links = hardLinkTracker();
  const walk = async (rel: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    const dir = rel === "" ? root : join(root, rel);
    for (const name of (await readdir(dir)).sort()) {
      const path = rel === "" ? name : `${rel}/${name}`;
      if (nonUtf8Name(dir, name) !== undefined) {
        opts.onSkip?.(path, "its name is not valid UTF-8");
        continue;
      }
      let st: BigIntStats;
      try {
        st = await lstat(join(dir, name), { bigint: true });
      } catch {
        continue; // removed while we walked: a cache has no promise to keep about it
      }
      const base = { path, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeNs / 1_000_000_000n) };
      if (st.isDirectory()) {
        out.push({ ...base, type: "directory" });
        await walk(path);
      } else if (st.isFile()) {
        const e: LayerEntry = { ...base, type: "file", size: Number(st.size), source: join(dir, name) };
        out.push(e);
        links.add(st, e);
      } else if (st.isSymbolicLink()) out.push({ ...base, type: "symlink", linkname: await readlink(join(dir, name)) });
      else if (st.isFIFO()) out.push({ ...base, type: "fifo" });
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        // Device nodes never travel: an importer would skip them anyway.
        opts.onSkip?.(path, "it is a device node");
      } else opts.onSkip?.(path, "it is a socket");
    }
  };
  await walk("");
  links.link();
  return out;
}
