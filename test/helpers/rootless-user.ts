// Unprivileged users for the rootless tests: created once (idempotent) with or without subordinate id ranges, each
// test gets a HOME and store of its own, and the built CLI runs as that user through setpriv. Tests run as root.
import { spawn } from "node:child_process";
import { execFile } from "node:child_process";
import { access, chmod, chown, constants, cp, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { rmSync } from "node:fs";
import { BIN, type CliResult } from "./cli.js";
import { requireTool } from "./tools.js";
import { findOnPath } from "../../src/executor/select-executor.js";

const run = promisify(execFile);

export interface RootlessUser {
  name: string;
  uid: number;
  gid: number;
  /** The user's subordinate uid range start (undefined for the user without ranges). */
  subuidStart?: number;
}

export interface RootlessHome {
  user: RootlessUser;
  /** A fresh HOME owned by the user (0700). */
  home: string;
  /** The store the CLI uses: $HOME/.local/share/tsbuild (the default, no --root). */
  store: string;
  /** Runs `node dist/bundle/bin.js args` as the user, with only HOME/PATH/USER (and `env`) set. */
  tsbuild(args: string[], opts?: RunAsOptions): Promise<CliResult>;
  /** Starts the CLI as the user without waiting (for kill tests); the pid is setpriv's, which execs node. */
  spawnTsbuild(args: string[], opts?: RunAsOptions): { pid: number; done: Promise<CliResult> };
  /** Removes HOME (as root: the store holds files owned by the user's subordinate ids). */
  cleanup(): Promise<void>;
}

export interface RunAsOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
}

const SUBUID_COUNT = 65536;

/**
 * The user `name`, created if missing. With `subuidStart`, /etc/subuid and /etc/subgid give it
 * `subuidStart`..+65535; without, any range it has is removed.
 */
export async function ensureUser(name: string, subuidStart?: number): Promise<RootlessUser> {
  if (process.getuid?.() !== 0) throw new Error("the rootless tests create users: run them as root");
  for (const t of ["setpriv", "unshare"]) await requireTool(t);
  for (const t of ["newuidmap", "newgidmap", "useradd", "usermod"]) {
    try {
      await run("sh", ["-c", `command -v ${t}`]);
    } catch {
      throw new Error(`${t} is not installed: apt-get install -y ${t.startsWith("new") ? "uidmap" : "passwd"}`);
    }
  }
  const exists = await run("id", ["-u", name]).then(
    () => true,
    () => false,
  );
  if (!exists) await run("useradd", ["--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", name]);
  const uid = Number((await run("id", ["-u", name])).stdout.trim());
  const gid = Number((await run("id", ["-g", name])).stdout.trim());
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    const text = await readFile(file, "utf8").catch(() => "");
    const mine = text.split("\n").filter((l) => l.startsWith(`${name}:`));
    const wanted = subuidStart === undefined ? undefined : `${name}:${subuidStart}:${SUBUID_COUNT}`;
    if (mine.length === (wanted ? 1 : 0) && (wanted === undefined || mine[0] === wanted)) continue;
    const flag = file.endsWith("subuid") ? "subuids" : "subgids";
    for (const line of mine) {
      const [, start, count] = line.split(":");
      await run("usermod", [`--del-${flag}`, `${start}-${Number(start) + Number(count) - 1}`, name]);
    }
    if (subuidStart !== undefined) await run("usermod", [`--add-${flag}`, `${subuidStart}-${subuidStart + SUBUID_COUNT - 1}`, name]);
  }
  await shareDevices();
  return { name, uid, gid, ...(subuidStart !== undefined ? { subuidStart } : {}) };
}

/**
 * RUN's default network opens /dev/net/tun (slirp4netns) and fuse-overlayfs /dev/fuse, as rootless podman does.
 * Debian's udev makes both 0666; some hosts (this CI's) leave them 0600, which only root can use: give them Debian's mode.
 */
async function shareDevices(): Promise<void> {
  for (const [dev, module] of [
    ["/dev/net/tun", "tun"],
    ["/dev/fuse", "fuse"],
  ] as const) {
    const st = await stat(dev).catch(() => undefined);
    if (!st) throw new Error(`${dev} is missing: load the ${module} module (modprobe ${module})`);
    if ((st.mode & 0o006) !== 0o006) await chmod(dev, 0o666);
  }
}

/** The default test users: one with subordinate ids, one without. */
export const withSubids = (): Promise<RootlessUser> => ensureUser("tsb-rootless", 300000);
export const withoutSubids = (): Promise<RootlessUser> => ensureUser("tsb-nosubids");

/** Whether every directory above `path` lets others search it (so the user can reach `path`). */
async function traversable(path: string): Promise<boolean> {
  for (let d = dirname(path); ; d = dirname(d)) {
    const st = await stat(d);
    if ((st.mode & 0o001) === 0) return false;
    if (d === "/") return true;
  }
}

let bundleCopy: Promise<string> | undefined;

/** dist/bundle/bin.js where the user can read it: in place when every parent is searchable, else a copy in /tmp. */
async function readableBin(): Promise<string> {
  await access(BIN, constants.R_OK).catch(() => {
    throw new Error(`${BIN} is missing: run \`npm run build\` first`);
  });
  if (await traversable(BIN)) return BIN;
  bundleCopy ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "tsbuild-rootless-bundle-"));
    await cp(dirname(BIN), join(dir, "bundle"), { recursive: true });
    await chmod(dir, 0o755);
    // One copy per test process, removed when it exits.
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    return join(dir, "bundle", "bin.js");
  })();
  return bundleCopy;
}

/** A fresh HOME for `user` under /tmp, and the CLI run as that user. */
export async function rootlessHome(user: RootlessUser): Promise<RootlessHome> {
  const bin = await readableBin();
  const setpriv = await findOnPath("setpriv");
  if (setpriv === undefined) throw new Error("setpriv is not installed: apt-get install -y util-linux");
  const home = await mkdtemp(join(tmpdir(), `tsbuild-${user.name}-`));
  await chown(home, user.uid, user.gid);
  await chmod(home, 0o700);
  const argvFor = (args: string[]): string[] => [
    "--reuid",
    String(user.uid),
    "--regid",
    String(user.gid),
    "--init-groups",
    "--",
    process.execPath,
    bin,
    ...args,
  ];
  const envFor = (opts: RunAsOptions): NodeJS.ProcessEnv => ({
    HOME: home,
    USER: user.name,
    LOGNAME: user.name,
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    ...opts.env,
  });
  const spawnTsbuild = (args: string[], opts: RunAsOptions = {}) => {
    // setpriv by absolute path: spawn looks a bare name up in the child's PATH, which a test may strip.
    const child = spawn(setpriv, argvFor(args), { cwd: opts.cwd ?? home, env: envFor(opts), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.stdin.end(opts.input ?? "");
    const done = new Promise<CliResult>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, sig) =>
        resolve({ code: code ?? (sig ? 128 : -1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
      );
    });
    return { pid: child.pid ?? -1, done };
  };
  return {
    user,
    home,
    store: join(home, ".local", "share", "tsbuild"),
    tsbuild: (args, opts) => spawnTsbuild(args, opts).done,
    spawnTsbuild,
    cleanup: () => rm(home, { recursive: true, force: true, maxRetries: 3 }),
  };
}

/** Pids of processes running as the user or one of its subordinate ids (a test asserts none is left behind). */
export async function processesOf(user: RootlessUser): Promise<number[]> {
  const mine = (uid: number): boolean =>
    uid === user.uid || (user.subuidStart !== undefined && uid >= user.subuidStart && uid < user.subuidStart + SUBUID_COUNT);
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, "utf8").catch(() => "");
    const m = /^Uid:\s+(\d+)/m.exec(status);
    if (m && mine(Number(m[1]))) pids.push(Number(name));
  }
  return pids;
}

/** Makes `path` and its files readable by everyone (a build context the user must read), parents searchable. */
export async function shareWithUser(path: string): Promise<void> {
  await run("chmod", ["-R", "a+rX", path]);
}
