// A pass-through that hashes (sha256) and counts what flows through it: one helper for every stream that must be
// checked against a digest on the way (archive members, downloads, uploads).
import { createHash } from "node:crypto";
import { Transform } from "node:stream";

export interface Sha256Tap extends Transform {
  /** `sha256:…` of everything passed so far (call once the stream has ended). */
  digest(): `sha256:${string}`;
  bytes(): number;
}

/** `onChunk` is awaited before a chunk is passed on (a consumer that must see every chunk first). */
export function sha256Tap(onChunk?: (c: Buffer) => Promise<void>): Sha256Tap {
  const h = createHash("sha256");
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      if (onChunk) onChunk(chunk).then(() => cb(null, chunk), cb);
      else cb(null, chunk);
    },
  });
  return Object.assign(t, { digest: (): `sha256:${string}` => `sha256:${h.digest("hex")}`, bytes: () => n });
}
