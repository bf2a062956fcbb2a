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
  /**
   * Supplementary groups: the /etc/group entries listing the user's name, only when the spec names no group (runc's
   * GetExecUser, which BuildKit uses: `USER bob` gets bob's groups, `USER bob:staff` only staff).
   */
  additionalGids?: number[];
}

export interface LookupUserOptions {
  /**
   * The gid for a bare numeric uid (`1000`):
   * "same" = the uid itself (BuildKit's COPY --chown=1000 gives 1000:1000, even with a passwd entry);
   * "root" = the passwd entry's gid, or 0 without one (USER 1000 at run time). Default "root".
   */
  numericGidDefault?: "same" | "root";
  /**
   * BuildKit's file operations (COPY --chown, WORKDIR's mkdir: readUser in its file op) never fail a lookup: a user
   * name missing from /etc/passwd (or no passwd at all) is uid 0 gid 0, and a group name missing from /etc/group
   * keeps the gid the user part gave. Default false: RUN and `tsbuild run` refuse unknown names, as runc does.
   */
  lenient?: boolean;
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
  let name: string | undefined;
  if (NUMERIC.test(userPart)) {
    uid = checkId(userPart, "uid", spec);
    const entry = passwd.find((p) => p.uid === uid);
    home = entry?.home;
    name = entry?.name;
    gid = opts.numericGidDefault === "same" ? uid : (entry?.gid ?? 0);
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry && !opts.lenient) {
      throw new BuildError(
        "UNKNOWN_USER",
        passwdRows
          ? `unable to find user ${userPart}: no matching entries in /etc/passwd of the image`
          : `unable to find user ${userPart}: the image has no /etc/passwd`,
        { hint: "use a numeric uid, or create the user in an earlier step" },
      );
    }
    uid = entry?.uid ?? 0;
    gid = entry?.gid ?? 0;
    home = entry?.home;
    name = entry?.name;
  }

  if (groupPart !== undefined) {
    if (groupPart === "") throw new BuildError("BAD_USER", `empty group name in user spec ${JSON.stringify(spec)}`);
    if (NUMERIC.test(groupPart)) {
      gid = checkId(groupPart, "gid", spec);
    } else {
      const rows = await readDb(rootfs, "/etc/group");
      const row = rows?.find((r) => r[0] === groupPart && r[2] !== undefined && NUMERIC.test(r[2]));
      if (row) gid = Number(row[2]);
      else if (!opts.lenient) {
        throw new BuildError(
          "UNKNOWN_GROUP",
          rows
            ? `unable to find group ${groupPart}: no matching entries in /etc/group of the image`
            : `unable to find group ${groupPart}: the image has no /etc/group`,
          { hint: "use a numeric gid, or create the group in an earlier step" },
        );
      }
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
  if (groupPart === undefined && name !== undefined) {
    const groups = (await readDb(rootfs, "/etc/group")) ?? [];
    const gids = groups
      .filter((r) => r[2] !== undefined && NUMERIC.test(r[2]) && (r[3] ?? "").split(",").includes(name as string))
      .map((r) => Number(r[2]))
      .filter((g) => g <= MAX_ID);
    if (gids.length) out.additionalGids = [...new Set(gids)];
  }
  return out;
}
