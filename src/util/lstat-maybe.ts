// lstat that answers "not there" instead of throwing: the same small question many modules ask.
import type { Stats } from "node:fs";
import { lstat } from "node:fs/promises";
import { errnoCode } from "./errno.js";

/** The path's lstat, or undefined when it does not exist (ENOENT); any other error is thrown. */
export async function lstatMaybe(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
}
