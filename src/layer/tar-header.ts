// Tar header blocks for layer entries, byte for byte as tar-stream 3's pack writes them (ustar; a PAX record for a
// non-ASCII or too long name or link, big ids and xattrs). Layers written before keep their diff_ids; without the
// pack's stream machinery, one small entry costs a Buffer instead of several promises and stream events.
import type { EntryType } from "./types.js";

/** What one header says (tar-stream's header fields, `pax` its extended records). */
export interface TarHeader {
  name: string;
  type: EntryType;
  /** Type bits included; only the permission bits (0o7777) are written. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  size: number;
  linkname?: string;
  uname: string;
  gname: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

const TYPEFLAG: Record<EntryType, number> = {
  file: 0,
  hardlink: 1,
  symlink: 2,
  "char-device": 3,
  "block-device": 4,
  directory: 5,
  fifo: 6,
};
const PAX_TYPEFLAG = 72; // 'x'
const ZEROS = "0000000000000000000";
const SEVENS = "7777777777777777777";
const USTAR = Buffer.from("ustar\u000000", "latin1");
const ZERO_BLOCK = Buffer.alloc(1024);

/** The zero bytes that pad `size` bytes of entry data to a whole block. */
export function padding(size: number): Buffer {
  const rest = size & 511;
  return ZERO_BLOCK.subarray(0, rest === 0 ? 0 : 512 - rest);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE: Buffer = ZERO_BLOCK;

function octal(value: number, digits: number): string {
  const s = value.toString(8);
  // tar-stream's overflow marker; the value then travels in a PAX record.
  if (s.length > digits) return SEVENS.slice(0, digits) + " ";
  return ZEROS.slice(0, digits - s.length) + s + " ";
}

function writeSize(size: number, buf: Buffer, at: number): void {
  if (size.toString(8).length <= 11) {
    buf.write(octal(size, 11), at + 124, "latin1");
    return;
  }
  // Base-256 for sizes of 8 GiB and more.
  buf[at + 124] = 0x80;
  let n = size;
  for (let i = 11; i > 0; i--) {
    buf[at + 124 + i] = n & 0xff;
    n = Math.floor(n / 0x100);
  }
}

// Every field but the link name is ASCII here (cutAt sends anything else to PAX): latin1 writes the same bytes, faster.
// Fields come from `h` and the arguments, with no object per header in between: a layer writes one per entry.
function writeBlock(buf: Buffer, at: number, h: TarHeader, name: string, prefix: string, typeflag: number, size: number, linkname: string | undefined): void {
  buf.fill(0, at, at + 512);
  buf.write(name, at, "latin1");
  buf.write(octal(h.mode & 0o7777, 6), at + 100, "latin1");
  buf.write(octal(h.uid, 6), at + 108, "latin1");
  buf.write(octal(h.gid, 6), at + 116, "latin1");
  writeSize(size, buf, at);
  // `| 0` as tar-stream: the field holds what a 32-bit time holds.
  buf.write(octal(h.mtime | 0, 11), at + 136, "latin1");
  buf[at + 156] = 0x30 + typeflag;
  if (linkname) buf.write(linkname, at + 157, "utf8");
  USTAR.copy(buf, at + 257);
  if (h.uname) buf.write(h.uname, at + 265, "latin1");
  if (h.gname) buf.write(h.gname, at + 297, "latin1");
  buf.write(octal(h.devmajor || 0, 6), at + 329, "latin1");
  buf.write(octal(h.devminor || 0, 6), at + 337, "latin1");
  if (prefix) buf.write(prefix, at + 345, "latin1");
  let sum = 8 * 32;
  for (let i = at; i < at + 148; i++) sum += buf[i] as number;
  for (let i = at + 156; i < at + 512; i++) sum += buf[i] as number;
  buf.write(octal(sum, 6), at + 148, "latin1");
}

function block(h: TarHeader, name: string, prefix: string, typeflag: number, size: number, linkname: string | undefined): Buffer {
  const buf = Buffer.allocUnsafe(512);
  writeBlock(buf, 0, h, name, prefix, typeflag, size, linkname);
  return buf;
}

/**
 * The ustar name/prefix split of `name` as the index of the slash between them (-1: no prefix), or undefined when
 * it does not fit (or is not ASCII): then PAX carries it. The prefix takes whole leading components, as few as let
 * the rest fit in 100 bytes.
 */
function cutAt(name: string, linkname: string | undefined): number | undefined {
  if (Buffer.byteLength(name) !== name.length) return undefined;
  let cut = -1;
  while (name.length - cut - 1 > 100) {
    cut = name.indexOf("/", cut + 1);
    if (cut === -1) return undefined;
  }
  if (cut > 155) return undefined;
  if (linkname && Buffer.byteLength(linkname) > 100) return undefined;
  return cut;
}

/** A PAX record: "<length> key=value\n", the length counting its own digits. */
function paxRecord(text: string): string {
  const len = Buffer.byteLength(text);
  let digits = Math.floor(Math.log(len) / Math.log(10)) + 1;
  if (len + digits >= Math.pow(10, digits)) digits++;
  return `${len + digits}${text}`;
}

/** Whether `h` needs PAX records (encodeHeader), or fits one plain ustar block (writePlainHeader). */
export function needsPax(h: TarHeader): boolean {
  return h.pax !== undefined || cutAt(h.name, h.linkname) === undefined;
}

/**
 * The one header block of an entry that needs no PAX records (see needsPax), written at `buf[at..at+512)`: a
 * layer of many small files then costs no Buffer per header.
 */
export function writePlainHeader(h: TarHeader, buf: Buffer, at: number): void {
  const cut = h.pax ? undefined : cutAt(h.name, h.linkname);
  if (cut === undefined) throw new Error("internal: writePlainHeader of a header that needs PAX records");
  const name = cut < 0 ? h.name : h.name.slice(cut + 1);
  writeBlock(buf, at, h, name, cut < 0 ? "" : h.name.slice(0, cut), TYPEFLAG[h.type], h.size, h.linkname);
}

/** The header blocks of one entry (a PAX header and its records first when needed); the data and its padding follow. */
export function encodeHeader(h: TarHeader): Buffer {
  if (!needsPax(h)) {
    const buf = Buffer.allocUnsafe(512);
    writePlainHeader(h, buf, 0);
    return buf;
  }
  let records = paxRecord(` path=${h.name}\n`);
  if (h.linkname) records += paxRecord(` linkpath=${h.linkname}\n`);
  for (const [k, v] of Object.entries(h.pax ?? {})) records += paxRecord(` ${k}=${v}\n`);
  const body = Buffer.from(records, "utf8");
  const linkname = h.linkname ? "PaxHeader" : undefined;
  // tar-stream names both the PAX header and the entry's own header "PaxHeader"; readers take the path from the record.
  const paxHead = block(h, "PaxHeader", "", PAX_TYPEFLAG, body.length, linkname);
  const own = block(h, "PaxHeader", "", TYPEFLAG[h.type], h.size, linkname);
  return Buffer.concat([paxHead, body, padding(body.length), own]);
}
