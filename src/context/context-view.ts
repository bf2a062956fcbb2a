// A RUN bind mount's view of a context directory: only what .dockerignore lets through, as BuildKit exposes it
// (ignored files are neither readable in the RUN nor part of its cache key). Files are hard links when the view is
// read-only (no data copied; the mount is read-only so the context cannot be written through them) and copies when writable.
import { chmodSync, constants, copyFileSync, lchownSync, linkSync, lutimesSync, mkdirSync, readlinkSync, symlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import { throwIfAborted } from "../errors.js";
import type { ContextEntry } from "./build-context.js";
import { errnoCode } from "../util/errno.js";

export interface ViewableContext {
  walk(relDir: string, signal?: AbortSignal, onExcluded?: (rel: string) => void): AsyncIterable<ContextEntry>;
}

function setMeta(p: string, st: Stats): void {
  lchownSync(p, st.uid, st.gid);
  // After chown, which clears setuid/setgid.
  if (!st.isSymbolicLink()) chmodSync(p, st.mode & 0o7777);
  lutimesSync(p, st.atime, st.mtime);
}

/**
 * The directory to mount for context directory `relDir` (whose lstat is `top`): undefined when .dockerignore
 * leaves out nothing below it (mount it as is), else `slot`, filled with the non-ignored entries.
 */
export async function contextView(
  context: ViewableContext,
  relDir: string,
  top: Stats,
  slot: string,
  opts: { writable: boolean; signal?: AbortSignal },
): Promise<string | undefined> {
  let excluded = false;
  const entries: ContextEntry[] = [];
  for await (const e of context.walk(relDir, opts.signal, () => (excluded = true))) entries.push(e);
  if (!excluded) return undefined;
  const strip = relDir === "." || relDir === "" ? 0 : relDir.length + 1;
  const dirs: { path: string; stat: Stats }[] = [{ path: slot, stat: top }];
  mkdirSync(slot, { mode: 0o700 });
  // Hard links need one filesystem; the first failure switches to copies.
  let link = !opts.writable;
  for (const e of entries) {
    throwIfAborted(opts.signal);
    const target = join(slot, e.rel.slice(strip));
    if (e.stat.isDirectory()) {
      mkdirSync(target, { mode: 0o700 });
      dirs.push({ path: target, stat: e.stat });
    } else if (e.stat.isSymbolicLink()) {
      symlinkSync(readlinkSync(e.abs), target);
      setMeta(target, e.stat);
    } else if (e.stat.isFile()) {
      if (link) {
        try {
          linkSync(e.abs, target);
          continue; // shares the context file's inode, metadata included
        } catch (err) {
          // EXDEV: another filesystem; EPERM: protected_hardlinks for a file this user does not own.
          const code = errnoCode(err);
          if (code !== "EXDEV" && code !== "EPERM") throw err;
          link = false;
        }
      }
      copyFileSync(e.abs, target, constants.COPYFILE_FICLONE);
      setMeta(target, e.stat);
    }
    // Sockets, fifos and devices: nothing a build reads from a context; left out.
  }
  // Deepest first, so a read-only directory never blocks fixing up one below it.
  for (const d of dirs.reverse()) setMeta(d.path, d.stat);
  return slot;
}
