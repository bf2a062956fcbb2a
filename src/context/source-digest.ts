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
import type { FileHashCache } from "./file-hash-cache.js";
import { requireSome, selectSource, type CopySelection } from "./copy-selection.js";

export interface SourcesDigest {
  digest: string;
  /** Per selected path, a short description that changes whenever the entry does (for explaining misses). */
  files: Record<string, string>;
  /** Every entry the digest covers, for the copy that executes the step to check against (copy.ts `keyed`). */
  ledger: DigestLedger;
}

/** Digest of the context entries `sources` select (the same resolution COPY uses, so errors match too). */
export async function digestContextSources(
  context: BuildContext,
  sources: string[],
  cache: FileHashCache,
  hasher: Hasher,
  opts: { range?: SourceRange; signal?: AbortSignal; select?: CopySelection } = {},
): Promise<SourcesDigest> {
  const limit = pLimit(16);
  const pending: { path: string; rel: string; meta: string; content: string | Promise<string>; linkTo?: string }[] = [];
  // Names of one inode within one source are copied as hard links (copy.ts), so the key says which are: the first name's key path.
  let inodes = new Map<string, string>();
  const add = (path: string, abs: string, st: Stats, rel: string) => {
    const meta = entryMeta(st);
    let linkTo: string | undefined;
    if (st.isFile() && st.nlink > 1) {
      const ino = `${st.dev}:${st.ino}`;
      linkTo = inodes.get(ino);
      if (linkTo === undefined) inodes.set(ino, path);
    }
    let content: string | Promise<string>;
    // Unchanged files are answered from the stat cache, small changed ones read at once, both without a promise;
    // only large files are streamed, 16 at a time.
    if (st.isFile()) content = cache.lookup(rel, st) ?? cache.hashSmallSync(abs, rel, st) ?? limit(() => cache.hash(abs, rel, st, opts.signal));
    else if (st.isSymbolicLink()) content = readlinkSync(abs);
    else content = "";
    if (typeof content !== "string") {
      // Handled here so a failure while the walk is still running is not an unhandled rejection; awaited below.
      content.catch(() => undefined);
    }
    pending.push(linkTo === undefined ? { path, rel, meta, content } : { path, rel, meta, content, linkTo });
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
      for await (const e of walk) add(`${prefix}/${e.rel.slice(base.length)}`, e.abs, e.stat, e.rel);
    }
  }
  const files: Record<string, string> = {};
  const lines: string[] = [];
  const ledger = createDigestLedger(hasher);
  for (const p of pending) {
    const content = typeof p.content === "string" ? p.content : await p.content;
    // The copy that executes this step checks its bytes against these (copy.ts): key and layer cannot disagree.
    ledger.record(p.rel, { meta: p.meta, content });
    const desc = p.linkTo === undefined ? `${p.meta}:${content}` : `${p.meta}:${content}:link=${p.linkTo}`;
    files[p.path] = desc;
    lines.push(`${p.path}\u0000${desc}`);
  }
  return { digest: hasher.key(lines.join("\n")), files, ledger };
}
