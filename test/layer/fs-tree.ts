// Test helpers: turn a directory tree into LayerEntry[] (like a snapshot differ would) and describe a tree's metadata for comparison.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { LayerEntry } from "../../src/layer/types.js";

const run = promisify(execFile);

export async function hasTool(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

export async function getXattrs(p: string): Promise<Record<string, string>> {
  try {
    const { stdout } = await run("getfattr", ["-h", "-d", "-m", "^user\\.", "-e", "text", p]);
    const out: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
      const m = /^([^#=][^=]*)="(.*)"$/.exec(line);
      if (m?.[1] && m[2] !== undefined) out[m[1]] = m[2];
    }
    return out;
  } catch {
    return {};
  }
}

/** Every path under root (sorted), with hardlinks (same inode seen again) as hardlink entries. */
export async function treeEntries(root: string, opts: { xattrs?: boolean } = {}): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  const inodes = new Map<number, string>();
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = await lstat(abs);
      const base = { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      let e: LayerEntry;
      if (st.isDirectory()) e = { ...base, type: "directory" };
      else if (st.isSymbolicLink()) e = { ...base, type: "symlink", linkname: await readlink(abs) };
      else if (st.isFile() && st.nlink > 1 && inodes.has(st.ino)) e = { ...base, type: "hardlink", linkname: inodes.get(st.ino) as string };
      else if (st.isFile()) {
        e = { ...base, type: "file", size: st.size, source: abs };
        if (st.nlink > 1) inodes.set(st.ino, path);
      } else if (st.isFIFO()) e = { ...base, type: "fifo" };
      else if (st.isCharacterDevice() || st.isBlockDevice())
        e = { ...base, type: st.isCharacterDevice() ? "char-device" : "block-device", devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: st.rdev & 0xff };
      else continue;
      if (opts.xattrs && !st.isSymbolicLink()) {
        const x = await getXattrs(abs);
        if (Object.keys(x).length > 0) e.xattrs = x;
      }
      out.push(e);
      if (st.isDirectory()) await walk(path);
    }
  }
  await walk("");
  return out;
}

/** A comparable description of a tree: metadata, content hashes, and which paths share an inode. */
export async function describeTree(root: string, opts: { xattrs?: boolean } = {}): Promise<Record<string, unknown>[]> {
  const entries = await treeEntries(root, opts);
  return Promise.all(
    entries.map(async (e) => {
      const d: Record<string, unknown> = { ...e };
      delete d["source"];
      if (e.type === "file")
        d["sha"] = createHash("sha256")
          .update(await readFile(join(root, e.path)))
          .digest("hex");
      return d;
    }),
  );
}
