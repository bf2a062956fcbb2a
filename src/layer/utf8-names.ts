// File names that are not valid UTF-8: Node decodes them lossily (U+FFFD), and the decoded name then names no file,
// and layer entry paths are UTF-8. Found here so walks and diffs can refuse them by name instead of losing them or failing with ENOENT.
import { readdirSync } from "node:fs";

/** The raw bytes of the entry of `dir` that `decoded` stands for, when that name is not valid UTF-8; else undefined. */
export function nonUtf8Name(dir: string, decoded: string): Buffer | undefined {
  if (!decoded.includes("\uFFFD")) return undefined;
  // A real U+FFFD in a valid name round-trips; a lossy decoding does not.
  return readdirSync(dir, { encoding: "buffer" }).find((b) => b.toString("utf8") === decoded && !Buffer.from(decoded, "utf8").equals(b));
}

/** A name's bytes with everything outside printable ASCII (and the backslash) as \xNN, so the user can find the file. */
export function escapeBytes(b: Buffer): string {
  let out = "";
  for (const c of b) out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`;
  return out;
}
