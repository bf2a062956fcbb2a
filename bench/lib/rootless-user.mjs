// The ordinary user the rootless peers (tsbuild rootless, buildah rootless) run as: looked up once per bench run, given
// a HOME and an XDG_RUNTIME_DIR of its own under the bench work dir, and a `wrap` that runs a command as it (setpriv).
// The user is made by the one running the bench (useradd + /etc/subuid ranges); the bench never creates users.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync } from "node:fs";
import { join } from "node:path";

/**
 * `{ ok: true, name, uid, gid, home, env, wrap }` or `{ ok: false, note }` saying what is missing. `wrap(cmd, args)`
 * gives the [file, argv] that runs `cmd args` as the user; `env` is what a login session of the user would set.
 */
export function benchUser({ name, work, baseArchive }) {
  const id = (flag) => spawnSync("id", [flag, name], { encoding: "utf8" });
  const [u, g] = [id("-u"), id("-g")];
  if (process.getuid?.() !== 0) return { ok: false, note: "the rootless peers need the bench to run as root (it switches to the user)" };
  if (u.status !== 0)
    return {
      ok: false,
      note: `no user ${name}: useradd --user-group ${name}, then usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${name} if useradd gave it no /etc/subuid range`,
    };
  const [uid, gid] = [Number(u.stdout), Number(g.stdout)];
  // The user reads the projects and the base image in the bench's work dir.
  chmodSync(work, 0o755);
  chmodSync(baseArchive, 0o644);
  const home = join(work, `rootless-${name}`);
  const runtimeDir = join(home, "run");
  for (const [dir, mode] of [
    [home, 0o755],
    [runtimeDir, 0o700], // XDG_RUNTIME_DIR must be the user's alone, as pam_systemd makes it
  ]) {
    mkdirSync(dir, { recursive: true });
    chownSync(dir, uid, gid);
    chmodSync(dir, mode);
  }
  const setpriv = ["setpriv", "--reuid", String(uid), "--regid", String(gid), "--init-groups", "--"];
  return {
    ok: true,
    name,
    uid,
    gid,
    home,
    env: { HOME: home, USER: name, LOGNAME: name, XDG_RUNTIME_DIR: runtimeDir },
    wrap: (cmd, args) => [setpriv[0], [...setpriv.slice(1), cmd, ...args]],
    /** Gives a directory the bench made (as root) to the user. */
    own: (dir) => chownSync(dir, uid, gid),
  };
}
