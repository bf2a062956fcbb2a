// Resolves a Docker user spec (`name`, `uid`, `name:group`, `uid:gid`, ...) to numeric ids using
// the rootfs's own /etc/passwd and /etc/group, as USER and COPY --chown do.
import { readFile } from "node:fs/promises";
import { BuildError } from "../errors.js";
import { resolveInRoot } from "../fs/rootfs-path.js";
import { MAX_ID } from "./sandbox-policy.js";
import { errnoCode } from "../util/errno.js";

export interface ResolvedUser {
  uid: number;
  gid: number;
  home?: string;
}

export interface LookupUserOptions {
  /**
   * The gid for a bare numeric uid (`1000`):
   * "same" = the uid itself (BuildKit's COPY --chown=1000 gives 1000:1000, even with a passwd entry);
   * "root" = the passwd entry's gid, or 0 without one (USER 1000 at run time). Default "root".
   */
  numericGidDefault?: "same" | "root";
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

const NUMERIC = /^[0-9]+$/;

/** Reads a colon-separated database file from the rootfs; undefined when it does not exist. */
async function readDb(rootfs: string, file: string): Promise<string[][] | undefined> {
  let text: string;
  try {
    text = await readFile(await resolveInRoot(rootfs, file), "utf8");
  } catch (e) {
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return undefined;
    throw e;
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(":"));
}

function parsePasswd(rows: string[][]): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const r of rows) {
    const [name, , uid, gid, , home] = r;
    if (name === undefined || uid === undefined || gid === undefined) continue;
    if (!NUMERIC.test(uid) || !NUMERIC.test(gid)) continue;
    out.push({ name, uid: Number(uid), gid: Number(gid), home: home ?? "" });
  }
  return out;
}

function checkId(value: string, what: string, spec: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ID) {
    // 4294967295 is (uid_t)-1, which setuid(2) reads as "no change": the process would stay root.
    throw new BuildError("BAD_USER", `invalid ${what} ${JSON.stringify(value)} in user spec ${JSON.stringify(spec)}: ids range from 0 to ${MAX_ID}`);
  }
  return n;
}

/** Resolves `spec` against the rootfs's /etc/passwd and /etc/group. */
export async function lookupUser(rootfs: string, spec: string, opts: LookupUserOptions = {}): Promise<ResolvedUser> {
  const colon = spec.indexOf(":");
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  if (userPart === "") throw new BuildError("BAD_USER", `empty user name in user spec ${JSON.stringify(spec)}`);

  // Only read passwd when needed: a fully numeric spec works in images without /etc/passwd.
  const needPasswd = !NUMERIC.test(userPart) || (groupPart === undefined && opts.numericGidDefault !== "same");
  const passwdRows = needPasswd ? await readDb(rootfs, "/etc/passwd") : undefined;
  const passwd = passwdRows ? parsePasswd(passwdRows) : [];

  let uid: number;
  let gid: number;
  let home: string | undefined;
  if (NUMERIC.test(userPart)) {
    uid = checkId(userPart, "uid", spec);
    const entry = passwd.find((p) => p.uid === uid);
    home = entry?.home;
    gid = opts.numericGidDefault === "same" ? uid : (entry?.gid ?? 0);
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry) {
      throw new BuildError(
        "UNKNOWN_USER",
        passwdRows
          ? `unable to find user ${userPart}: no matching entries in /etc/passwd of the image`
          : `unable to find user ${userPart}: the image has no /etc/passwd`,
        { hint: "use a numeric uid, or create the user in an earlier step" },
      );
    }
    uid = entry.uid;
    gid = entry.gid;
    home = entry.home;
  }

  if (groupPart !== undefined) {
    if (groupPart === "") throw new BuildError("BAD_USER", `empty group name in user spec ${JSON.stringify(spec)}`);
    if (NUMERIC.test(groupPart)) {
      gid = checkId(groupPart, "gid", spec);
    } else {
      const rows = await readDb(rootfs, "/etc/group");
      const row = rows?.find((r) => r[0] === groupPart && r[2] !== undefined && NUMERIC.test(r[2]));
      if (!row) {
        throw new BuildError(
          "UNKNOWN_GROUP",
          rows
            ? `unable to find group ${groupPart}: no matching entries in /etc/group of the image`
            : `unable to find group ${groupPart}: the image has no /etc/group`,
          { hint: "use a numeric gid, or create the group in an earlier step" },
        );
      }
      gid = Number(row[2]);
    }
  }
  if (uid > MAX_ID || gid > MAX_ID) {
    throw new BuildError(
      "BAD_USER",
      `user spec ${JSON.stringify(spec)} resolves to ${uid}:${gid}, outside the valid range 0-${MAX_ID} (/etc/passwd or /etc/group holds a bad id)`,
    );
  }
  const out: ResolvedUser = { uid, gid };
  if (home !== undefined && home !== "") out.home = home;
  return out;
}

/**
 * The groups `docker run` gives a process (moby's getUser): its primary gid first, then every /etc/group entry that
 * lists the user's name as a member (runc's GetExecUser). Only the primary gid when the spec names a group itself, or
 * when the user has no /etc/passwd entry to be named by.
 */
export async function supplementaryGids(rootfs: string, spec: string, primaryGid: number): Promise<number[]> {
  const out = [primaryGid];
  if (spec.includes(":")) return out;
  const passwd = parsePasswd((await readDb(rootfs, "/etc/passwd")) ?? []);
  const name = NUMERIC.test(spec) ? passwd.find((p) => p.uid === Number(spec))?.name : spec;
  if (name === undefined) return out;
  for (const row of (await readDb(rootfs, "/etc/group")) ?? []) {
    const gid = row[2];
    if (gid === undefined || !NUMERIC.test(gid) || Number(gid) > MAX_ID) continue;
    if ((row[3] ?? "").split(",").includes(name) && !out.includes(Number(gid))) out.push(Number(gid));
  }
  return out;
}
