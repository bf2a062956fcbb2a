// A pass-through that notes whether a tar stream ends with its end-of-archive marker: a tar cut at a member boundary
// parses cleanly, so only the missing marker tells it was truncated. It follows the member headers, so zero bytes
// inside a member (an empty layer blob is 1024 of them) are never taken for the marker.
import { Transform } from "node:stream";

/** A header's size field: octal text, or GNU base-256 when the high bit of its first byte is set. */
function memberSize(header: Buffer): number {
  const field = header.subarray(124, 136);
  if ((field[0] as number) & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] as number);
    return n;
  }
  const text = field
    .toString("latin1")
    .replace(/[\0 ]+$/g, "")
    .trim();
  return text === "" ? 0 : parseInt(text, 8) || 0;
}

export function tarTail(): Transform & { ended(): boolean } {
  let skip = 0; // member data (rounded up to 512) still to pass
  let header = Buffer.alloc(0); // a header block being collected
  let sawEnd = false; // a zero block where a header belongs
  let trailing = false; // only zero blocks since then
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      let off = 0;
      while (off < chunk.length) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - off);
          skip -= n;
          off += n;
          continue;
        }
        const n = Math.min(512 - header.length, chunk.length - off);
        header = Buffer.concat([header, chunk.subarray(off, off + n)]);
        off += n;
        if (header.length < 512) break;
        if (header.every((b) => b === 0)) {
          sawEnd = true;
          trailing = true;
        } else {
          // Data after an end marker: the marker was not the end (a concatenated archive is read on).
          trailing = false;
          sawEnd = false;
          skip = Math.ceil(memberSize(header) / 512) * 512;
        }
        header = Buffer.alloc(0);
      }
      cb(null, chunk);
    },
  });
  return Object.assign(t, { ended: () => sawEnd && trailing && skip === 0 && header.length === 0 });
}
