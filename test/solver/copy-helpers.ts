// Shared helpers for the COPY/ADD tests: temp trees and compact views of rootfs state and layer entries.
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { LayerEntry } from "../../src/layer/types.js";

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Creates files ("path": content), dirs ("path/": "") in root. */
export async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    if (rel.endsWith("/")) {
      await mkdir(abs, { recursive: true });
    } else {
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, content);
    }
  }
}

/** "path type mode uid:gid" per entry, for compact assertions. */
export function brief(entries: LayerEntry[]): string[] {
  return entries.map((e) => `${e.path} ${e.type} ${e.mode.toString(8).padStart(4, "0")} ${e.uid}:${e.gid}`);
}

/** The same view read from disk, for every path below `root` (optionally under `sub`). */
export async function diskView(root: string, sub = ""): Promise<string[]> {
  const out: string[] = [];
  async function visit(rel: string): Promise<void> {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const n of names) {
      const r = rel === "" ? n : `${rel}/${n}`;
      const st = await lstat(path.join(root, r));
      const type = st.isDirectory() ? "directory" : st.isSymbolicLink() ? "symlink" : "file";
      const mode = st.isSymbolicLink() ? 0o777 : st.mode & 0o7777;
      out.push(`${r} ${type} ${mode.toString(8).padStart(4, "0")} ${st.uid}:${st.gid}`);
      if (st.isDirectory()) await visit(r);
    }
  }
  await visit(sub);
  return out;
}

export async function content(root: string, rel: string): Promise<string> {
  return readFile(path.join(root, rel), "utf8");
}

export async function linkOf(root: string, rel: string): Promise<string> {
  return readlink(path.join(root, rel));
}
