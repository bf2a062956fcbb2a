// Streaming verification of downloaded bytes: a Transform that hashes and counts what passes through and fails the
// stream (instead of ending it) when the size is exceeded or the final sha256 differs, so a consumer never sees a
// clean end of wrong content.
import { createHash } from "node:crypto";
import { Transform } from "node:stream";
import { RegistryError } from "../errors.js";
import type { Digest } from "../image/types.js";

export interface Expected {
  digest: Digest;
  /** Expected size in bytes; undefined when unknown. */
  size?: number | undefined;
  /** What the bytes are, for the message: "layer 2 of docker.io/library/busybox:latest". */
  what: string;
}

/** What failed: more bytes than expected, a different count at the end, or another digest. */
export type Mismatch = "SIZE_MISMATCH" | "DIGEST_MISMATCH";

/** The registry's errors; a caller whose bytes come from elsewhere (an imported cache) names its own. */
function registryMismatch(kind: Mismatch, message: string): Error {
  const hint =
    kind === "SIZE_MISMATCH" ? "the registry served wrong content; nothing was stored" : "the registry or a proxy served corrupt content; nothing was stored";
  return new RegistryError(kind, message, { hint });
}

export function verifyingStream(expected: Expected, fail: (kind: Mismatch, message: string) => Error = registryMismatch): Transform & { bytes(): number } {
  const h = createHash("sha256");
  let n = 0;
  const t = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (expected.size !== undefined && n > expected.size) {
        cb(fail("SIZE_MISMATCH", `${expected.what} (${expected.digest}) is larger than the ${expected.size} bytes its descriptor says`));
        return;
      }
      h.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (expected.size !== undefined && n !== expected.size) {
        cb(fail("SIZE_MISMATCH", `${expected.what} (${expected.digest}) has ${n} bytes, its descriptor says ${expected.size}`));
        return;
      }
      const got = `sha256:${h.digest("hex")}`;
      if (got !== expected.digest) {
        cb(fail("DIGEST_MISMATCH", `${expected.what}: the content has digest ${got}, expected ${expected.digest}`));
        return;
      }
      cb();
    },
  });
  return Object.assign(t, { bytes: () => n });
}
