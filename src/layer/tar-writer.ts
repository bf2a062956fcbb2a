// Deterministic layer tars: entries in Go's filepath.Walk order (as BuildKit writes them), all metadata taken from the entry (never the clock or
// the local user database), file bytes streamed from disk. The same entries always give the same bytes, so the same diff_id.
import { createReadStream, readFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar, { type Header, type Pack } from "tar-stream";
import { AbortError, ArchiveError } from "../errors.js";
import type { EntryType, LayerEntry } from "./types.js";

export interface WriteLayerTarOptions {
  signal?: AbortSignal;
}

/** tar-stream's header plus the PAX records it writes (its typings omit `pax`). */
type TarHeaders = Partial<Header> & { name: string; pax?: Record<string, string> };

// Largest value the 7-digit octal uid/gid fields hold; beyond it the id travels in a PAX record.
const MAX_OCTAL_ID = 0o7777777;

// File-type bits (S_IFMT) per entry type. tar-stream replaces a falsy mode with 0644/0755 ("if (!header.mode)"), which
// turned a mode-000 file into a world-readable one; a mode that carries its type bits is never 0, and tar-stream masks
// the header field to 0o7777, so the permission bits written are exactly the entry's.
const TYPE_BITS: Record<EntryType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  hardlink: 0o100000,
  "char-device": 0o020000,
  "block-device": 0o060000,
  fifo: 0o010000,
};

const TAR_TYPE: Record<EntryType, Header["type"]> = {
  file: "file",
  directory: "directory",
  symlink: "symlink",
  hardlink: "link",
  "char-device": "character-device",
  "block-device": "block-device",
  fifo: "fifo",
};

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** A whiteout sorts where the name it deletes would: BuildKit's differs meet it there in their walk. */
function walkName(component: string): string {
  return component.startsWith(".wh.") && component !== ".wh..wh..opq" ? component.slice(4) : component;
}

/**
 * Go's filepath.Walk order, which BuildKit's layers have: a directory, then its children by name (bytewise), each
 * child's subtree before the next sibling — so `d/x` precedes `d.txt`, unlike a bytewise sort of whole paths.
 */
export function compareWalk(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = compareBytes(walkName(pa[i] as string), walkName(pb[i] as string)) || compareBytes(pa[i] as string, pb[i] as string);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

/** A copy of `entries` in walk order (parents always precede their children); stable for equal paths. */
export function sortEntries(entries: Iterable<LayerEntry>): LayerEntry[] {
  return [...entries].sort((a, b) => compareWalk(a.path, b.path));
}

function checkPath(e: LayerEntry): void {
  if (e.path === "" || e.path.startsWith("/") || e.path.endsWith("/") || e.path.split("/").some((c) => c === "" || c === "." || c === ".."))
    throw new ArchiveError("BAD_ENTRY_PATH", `layer entry path ${JSON.stringify(e.path)} is not a clean relative path`);
}

function headerOf(e: LayerEntry): TarHeaders {
  const type = TAR_TYPE[e.type];
  const whiteout = e.path.slice(e.path.lastIndexOf("/") + 1).startsWith(".wh.");
  if (!type) throw new ArchiveError("BAD_ENTRY_TYPE", `layer entry ${e.path} has unknown type ${String(e.type)}`);
  const pax: Record<string, string> = {};
  const h: TarHeaders = {
    name: e.type === "directory" ? `${e.path}/` : e.path,
    type,
    mode: TYPE_BITS[e.type] | (e.mode & 0o7777),
    uid: e.uid,
    gid: e.gid,
    // Whole seconds: sub-second times would make the tar depend on filesystem timestamp precision.
    mtime: new Date(Math.max(0, Math.floor(e.mtime)) * 1000),
    // BuildKit's writers (containerd's changeWriter, moby's tarAppender in Docker 20.10) name owners from the build
    // host's user database; only uid/gid 0 is "root" on every host, so other ids stay unnamed (never this machine's).
    // A whiteout is a header containerd's changeWriter builds by hand: no owner names.
    uname: e.uid === 0 && !whiteout ? "root" : "",
    gname: e.gid === 0 && !whiteout ? "root" : "",
    size: e.type === "file" ? (e.size ?? 0) : 0,
  };
  if (e.uid > MAX_OCTAL_ID) pax["uid"] = String(e.uid);
  if (e.gid > MAX_OCTAL_ID) pax["gid"] = String(e.gid);
  if (e.type === "symlink" || e.type === "hardlink") {
    if (e.linkname === undefined || e.linkname === "") throw new ArchiveError("BAD_ENTRY", `layer entry ${e.path} (${e.type}) has no link target`);
    h.linkname = e.linkname;
  }
  if (e.type === "char-device" || e.type === "block-device") {
    h.devmajor = e.devmajor ?? 0;
    h.devminor = e.devminor ?? 0;
  }
  if (e.xattrs) {
    // Sorted so the PAX record order (and so the digest) does not depend on how the caller built the object.
    for (const k of Object.keys(e.xattrs).sort(compareBytes)) pax[`SCHILY.xattr.${k}`] = e.xattrs[k] ?? "";
  }
  if (Object.keys(pax).length > 0) h.pax = pax;
  return h;
}

/** Files up to this size are read in one synchronous call: three thread-pool round trips per file dominated layers of many small files. */
const SMALL_FILE = 1 << 20;

async function writeSmallFileBody(pack: Pack, h: TarHeaders, e: LayerEntry, source: string, expected: number): Promise<void> {
  let data: Buffer;
  try {
    data = readFileSync(source);
  } catch (err) {
    throw new ArchiveError("SOURCE_UNREADABLE", `cannot read ${source} for layer entry ${e.path}: ${(err as Error).message}`, { cause: err });
  }
  if (data.length !== expected)
    throw new ArchiveError("SIZE_CHANGED", `file ${source} changed size while writing the layer (expected ${expected} bytes, got ${data.length})`, {
      hint: "a file in the build changed while its layer was being written",
    });
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry(h, (err) => (err ? reject(err) : resolve()));
    sink.on("error", () => undefined);
    if (data.length === 0 || sink.write(data)) sink.end(null);
    else sink.once("drain", () => sink.end(null));
  });
}

async function writeFileBody(pack: Pack, h: TarHeaders, e: LayerEntry, signal: AbortSignal | undefined): Promise<void> {
  const expected = h.size ?? 0;
  if (expected > 0 && !e.source) throw new ArchiveError("BAD_ENTRY", `layer entry ${e.path} has ${expected} bytes but no source file`);
  if (e.source && expected <= SMALL_FILE) return writeSmallFileBody(pack, h, e, e.source, expected);
  // Open the source before writing the header: a missing file must not leave a half-written entry behind.
  const src = e.source ? createReadStream(e.source) : undefined;
  if (src) {
    await new Promise<void>((resolve, reject) => {
      src.once("open", () => resolve());
      src.once("error", (err) =>
        reject(new ArchiveError("SOURCE_UNREADABLE", `cannot read ${e.source} for layer entry ${e.path}: ${err.message}`, { cause: err })),
      );
    });
  }
  const done = new Promise<void>((resolve, reject) => {
    // Fires once the entry is fully in the pack (or the pack failed).
    const sink = pack.entry(h, (err) => (err ? reject(err) : resolve()));
    // Failures reach the caller through the promise; an unheard 'error' event would crash the process.
    sink.on("error", () => undefined);
    void (async () => {
      let written = 0;
      try {
        if (src) {
          for await (const chunk of src as AsyncIterable<Buffer>) {
            if (signal?.aborted) throw new AbortError();
            written += chunk.length;
            if (written > expected) break;
            if (!sink.write(chunk)) await new Promise<void>((r) => sink.once("drain", () => r()));
          }
        }
        if (written !== expected)
          throw new ArchiveError(
            "SIZE_CHANGED",
            `file ${e.source ?? e.path} changed size while writing the layer (expected ${expected} bytes, ${written > expected ? "got more" : `got ${written}`})`,
            {
              hint: "a file in the build changed while its layer was being written",
            },
          );
        sink.end(null);
      } catch (err) {
        src?.destroy();
        // Destroying the pack stops the output before the truncated entry could look valid.
        pack.destroy(err as Error);
        reject(err);
      }
    })();
  });
  await done;
}

/** Write `entries` as a deterministic tar to `out` (which is ended). Rejects, without finishing the tar, on any inconsistency. */
export async function writeLayerTar(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>, out: Writable, opts: WriteLayerTarOptions = {}): Promise<void> {
  const { signal } = opts;
  const list: LayerEntry[] = [];
  // The entry list (metadata only) of one layer fits in memory; file contents never do and are streamed below.
  for await (const e of entries) list.push(e);
  const sorted = sortEntries(list);
  const pack = tar.pack();
  const piping = pipeline(pack, out);
  const produce = (async () => {
    for (const e of sorted) {
      if (signal?.aborted) throw new AbortError();
      checkPath(e);
      const h = headerOf(e);
      if (e.type === "file") await writeFileBody(pack, h, e, signal);
      else
        await new Promise<void>((resolve, reject) => {
          pack.entry(h, (err) => (err ? reject(err) : resolve()));
        });
    }
    pack.finalize();
  })();
  try {
    await produce;
  } catch (err) {
    if (!pack.destroyed) pack.destroy(err as Error);
    await piping.catch(() => undefined);
    throw err;
  }
  await piping;
}
