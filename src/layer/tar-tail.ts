// A pass-through that notes whether a tar stream ends with its end-of-archive marker (two zero blocks): a tar cut
// at a member boundary parses cleanly, so only the missing marker tells it was truncated.
import { Transform } from "node:stream";

export function tarTail(): Transform & { ended(): boolean } {
  let total = 0;
  let last = Buffer.alloc(0);
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      last = Buffer.concat([last, chunk.subarray(Math.max(0, chunk.length - 1024))]).subarray(-1024);
      cb(null, chunk);
    },
  });
  return Object.assign(t, { ended: () => total % 512 === 0 && last.length === 1024 && last.every((b) => b === 0) });
}
