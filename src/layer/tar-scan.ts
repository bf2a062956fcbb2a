// A fast pass over an uncompressed tar in the store that names each entry and digests all of its bytes (its header
// blocks, PAX record included, and its data): two entries with the same digest are the same entry, whatever fields
// the header holds. For comparing two layers written by tsbuild (a late change's layer against the one before);
// anything it does not know for sure (a bad checksum, GNU long names, a global PAX header, base-256 numbers) makes
// it answer undefined, and the caller takes the slow, general way.
import { createHash, type Hash } from "node:crypto";
import { open } from "node:fs/promises";
import type { EntryType } from "./types.js";

export interface ScannedEntry {
  /** As extract.ts names entries: no leading "./", no trailing "/". */
  path: string;
  type: EntryType;
  /** sha256 (hex) of every byte of the entry in the tar. */
  digest: string;
  /** Where those bytes are in the file (from the first header block, a PAX one included, to the end of the data). */
  offset: number;
  length: number;
}

const TYPES: Record<string, EntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};
const CHUNK = 4 * 1024 * 1024;

function text(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString("utf8", start, end === -1 || end > start + len ? start + len : end);
}

/** An octal field, or undefined when it is not one (base-256 or garbage). */
function octal(b: Buffer, start: number, len: number): number | undefined {
  if ((b[start] as number) & 0x80) return undefined;
  const s = b
    .toString("latin1", start, start + len)
    .replace(/[\0 ]+$/, "")
    .trim();
  return /^[0-7]*$/.test(s) ? (s === "" ? 0 : parseInt(s, 8)) : undefined;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return octal(h, 148, 8) === sum;
}

/** "len key=value\n" records; undefined when malformed. */
function paxRecords(b: Buffer): Map<string, string> | undefined {
  const out = new Map<string, string>();
  let i = 0;
  while (i < b.length) {
    const sp = b.indexOf(0x20, i);
    if (sp === -1) return undefined;
    const len = Number(b.toString("latin1", i, sp));
    if (!Number.isInteger(len) || len <= sp - i || i + len > b.length) return undefined;
    const rec = b.toString("utf8", sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq === -1) return undefined;
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

const normal = (p: string) => p.replace(/^(\.\/)+/, "").replace(/\/+$/, "");

/** Every entry of the tar at `file`, in order, or undefined when some header is not one this scanner knows for sure. */
export async function scanTarEntries(file: string): Promise<ScannedEntry[] | undefined> {
  const fh = await open(file, "r");
  try {
    // One buffer for the whole scan: what is left is moved to its start before each read (no allocation per refill).
    const buf = Buffer.allocUnsafe(CHUNK);
    let base = 0; // file offset of buf[0]
    let pos = 0; // next unread byte in buf
    let end = 0; // end of the bytes read into buf
    let eof = false;
    /** At least `n` (<= CHUNK) bytes at pos in buf, unless the file ends first. */
    const need = async (n: number): Promise<boolean> => {
      if (n > CHUNK) return false;
      while (end - pos < n && !eof) {
        buf.copyWithin(0, pos, end);
        base += pos;
        end -= pos;
        pos = 0;
        const { bytesRead } = await fh.read(buf, end, CHUNK - end, null);
        if (bytesRead === 0) eof = true;
        end += bytesRead;
      }
      return end - pos >= n;
    };
    /** Hashes the next `n` bytes (through chunk boundaries); false when the file ends first. */
    const consume = async (h: Hash, n: number): Promise<boolean> => {
      while (n > 0) {
        if (!(await need(1))) return false;
        const take = Math.min(n, end - pos);
        h.update(buf.subarray(pos, pos + take));
        pos += take;
        n -= take;
      }
      return true;
    };
    const out: ScannedEntry[] = [];
    let hash = createHash("sha256");
    let pax: Map<string, string> | undefined;
    let start = 0;
    for (;;) {
      if (!(await need(512))) return undefined; // no end-of-archive marker
      if (!pax) start = base + pos;
      const h = buf.subarray(pos, pos + 512);
      if (h.every((b) => b === 0)) return pax ? undefined : out;
      if (!checksumOk(h) || h.toString("latin1", 257, 262) !== "ustar") return undefined;
      const flag = String.fromCharCode(h[156] as number);
      const size = octal(h, 124, 12);
      if (size === undefined) return undefined;
      const padded = Math.ceil(size / 512) * 512;
      if (flag === "x") {
        if (pax || !(await need(512 + padded))) return undefined;
        pax = paxRecords(buf.subarray(pos + 512, pos + 512 + size));
        if (!pax) return undefined;
        hash.update(buf.subarray(pos, pos + 512 + padded));
        pos += 512 + padded;
        continue;
      }
      const type = TYPES[flag];
      if (!type) return undefined; // GNU long names, a global PAX header, vendor types
      const prefix = text(h, 345, 155);
      const path = normal(pax?.get("path") ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100)));
      const dataSize = pax?.has("size") ? Number(pax.get("size")) : size;
      if (!Number.isSafeInteger(dataSize) || (type !== "file" && dataSize !== 0)) return undefined;
      hash.update(h);
      pos += 512;
      if (!(await consume(hash, Math.ceil(dataSize / 512) * 512))) return undefined;
      out.push({ path, type, digest: hash.digest("hex"), offset: start, length: base + pos - start });
      hash = createHash("sha256");
      pax = undefined;
    }
  } finally {
    await fh.close();
  }
}
