// The content digest of what a COPY/ADD (or a RUN bind mount) reads from the build context: every selected entry's
// path, type, mode, owner, link target, bytes and hard links among them, after .dockerignore — never mtimes, so a
// fresh checkout still hits.
import type { Stats } from "node:fs";
import { readlinkSync } from "node:fs";
import pLimit from "p-limit";
import type { Hasher } from "../util/hasher.js";
import type { SourceRange } from "../frontend/types.js";
import type { BuildContext } from "./build-context.js";
import { createDigestLedger, entryMeta, type DigestLedger } from "./digest-ledger.js";
import type { EntryPlace, FileHashCache } from "./file-hash-cache.js";
import { requireSome, selectSource, type CopySelection } from "./copy-selection.js";

export interface SourcesDigest {
  digest: string;
  /** Per selected path, a short description that changes whenever the entry does (for explaining misses; built when first read). */
  readonly files: Record<string, string>;
  /** Every entry the digest covers, for the copy that executes the step to check against (copy.ts `keyed`). */
  ledger: DigestLedger;
}

const describe = (meta: string, content: string, linkTo: string | undefined) =>
  linkTo === undefined ? `${meta}:${content}` : `${meta}:${content}:link=${linkTo}`;

/** Digest of the context entries `sources` select (the same resolution COPY uses, so errors match too). */
export async function digestContextSources(
  context: BuildContext,
  sources: string[],
  cache: FileHashCache,
  hasher: Hasher,
  opts: { range?: SourceRange; signal?: AbortSignal; select?: CopySelection } = {},
): Promise<SourcesDigest> {
  const limit = pLimit(16);
  const ledger = createDigestLedger(hasher);
  // One line per entry, written as soon as its content hash is known (from the stat cache: at once); entries still
  // being read wait in `reading` with their line's index. No object per entry otherwise: 100,000 of them are GC work.
  const lines: string[] = [];
  const reading: { at: number; path: string; rel: string; meta: string; content: Promise<string>; linkTo?: string }[] = [];
  const settle = (at: number, path: string, rel: string, meta: string, content: string, linkTo?: string) => {
    // The copy that executes this step checks its bytes against these (copy.ts): key and layer cannot disagree.
    ledger.record(rel, meta, content);
    lines[at] = `${path}\u0000${describe(meta, content, linkTo)}`;
  };
  // Names of one inode within one source are copied as hard links (copy.ts), so the key says which are: the first name's key path.
  let inodes = new Map<string, string>();
  // Neighbouring entries mostly share type, mode and owner: one string for a run of them, not one per entry.
  let last: { st: Stats; meta: string } | undefined;
  const metaOf = (st: Stats): string => {
    if (last && last.st.mode === st.mode && last.st.uid === st.uid && last.st.gid === st.gid) return last.meta;
    last = { st, meta: entryMeta(st) };
    return last.meta;
  };
  const add = (path: string, abs: string, st: Stats, rel: string, at?: EntryPlace) => {
    const meta = metaOf(st);
    let linkTo: string | undefined;
    if (st.isFile() && st.nlink > 1) {
      const ino = `${st.dev}:${st.ino}`;
      linkTo = inodes.get(ino);
      if (linkTo === undefined) inodes.set(ino, path);
    }
    const index = lines.length;
    lines.push("");
    // Unchanged files are answered from the stat cache, small changed ones read at once, both without a promise;
    // only large files are streamed, 16 at a time.
    const known = st.isFile() ? (cache.lookup(rel, st, at) ?? cache.hashSmallSync(abs, rel, st, at)) : st.isSymbolicLink() ? readlinkSync(abs) : "";
    if (known !== undefined) return settle(index, path, rel, meta, known, linkTo);
    const content = limit(() => cache.hash(abs, rel, st, opts.signal, at));
    // Handled here so a failure while the walk is still running is not an unhandled rejection; awaited below.
    content.catch(() => undefined);
    reading.push(linkTo === undefined ? { at: index, path, rel, meta, content } : { at: index, path, rel, meta, content, linkTo });
  };
  for (const [i, src] of sources.entries()) {
    // --exclude/--parents: only what the copy will write (the same filter walks both).
    const sel = selectSource(src, opts.select);
    inodes = new Map();
    for (const m of await context.resolveSources(sel.source, opts.range)) {
      // Each source is named by its index and the path it matched, so swapping sources changes the key.
      const prefix = `${i}:${m.path}`;
      add(prefix, m.abs, m.stat, m.resolved);
      if (!m.stat.isDirectory()) continue;
      const base = m.resolved === "." ? "" : `${m.resolved}/`;
      const walk = requireSome(context.walk(m.resolved, opts.signal, undefined, sel.filter), src, sel.required, "the build context", opts.range);
      for await (const e of walk)
        add(
          `${prefix}/${e.rel.slice(base.length)}`,
          e.abs,
          e.stat,
          e.rel,
          e.dir !== undefined && e.name !== undefined ? (e as EntryPlace & typeof e) : undefined,
        );
    }
  }
  for (const r of reading) settle(r.at, r.path, r.rel, r.meta, await r.content, r.linkTo);
  // The lines are kept as the one string the key hashes and their lengths (a name may hold "\n"), not as 100,000
  // strings (each a tree of concatenations) that live as long as the step's plan.
  const text = lines.join("\n");
  const lengths = Uint32Array.from(lines, (l) => l.length);
  lines.length = 0;
  // Only a cache miss explains itself with the per-file descriptions: a no-op over 100,000 files never builds them.
  let files: Record<string, string> | undefined;
  return {
    digest: hasher.key(text),
    get files() {
      if (files) return files;
      files = {};
      for (let i = 0, at = 0; i < lengths.length; at += (lengths[i] as number) + 1, i++) {
        const l = text.slice(at, at + (lengths[i] as number));
        files[l.slice(0, l.indexOf("\u0000"))] = l.slice(l.indexOf("\u0000") + 1);
      }
      return files;
    },
    ledger,
  };
}
