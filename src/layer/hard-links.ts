// Hard links among the files a layer is made from (a RUN's changes, a cache mount directory): files that share an
// inode are tracked as they are listed, then all but the walk-first of each group become links to it, as the tar
// writes the walk-first one with the bytes.
import type { BigIntStats } from "node:fs";
import { compareWalk } from "./tar-writer.js";
import type { LayerEntry } from "./types.js";

export interface HardLinkTracker {
  /** Note `entry` (a regular file) made from the file `st` describes. */
  add(st: BigIntStats, entry: LayerEntry): void;
  /** Turns every group's later entries into hard links to its walk-first one. */
  link(): void;
}

export function hardLinkTracker(): HardLinkTracker {
  const inodes = new Map<string, LayerEntry[]>();
  return {
    add(st, entry) {
      if (!st.isFile() || st.nlink < 2n) return;
      const key = `${st.dev}:${st.ino}`;
      const group = inodes.get(key);
      if (group) group.push(entry);
      else inodes.set(key, [entry]);
    },
    link() {
      for (const group of inodes.values()) {
        if (group.length < 2) continue;
        group.sort((a, b) => compareWalk(a.path, b.path));
        const [first, ...rest] = group as [LayerEntry, ...LayerEntry[]];
        for (const e of rest) {
          e.type = "hardlink";
          e.linkname = first.path;
          delete e.size;
          delete e.source;
        }
      }
    },
  };
}
