// Helpers for the hostile-Dockerfile suite: watch the host for damage a build must never do (victim files, mounts,
// stray processes, paths created outside the store, /dev/null, sysctls), run builds with a time bound, and craft
// archives (tars, docker-archives) and read exported layers with tar-stream.
import { createHash, randomBytes } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { chmod, chown, lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, rm, stat, utimes, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import { main } from "../../src/cli/main.js";
import { REPO } from "./cli.js";

/** A short random hex suffix for names that must not collide with anything else on the machine. */
export function uniqueSuffix(bytes = 4): string {
  return randomBytes(bytes).toString("hex");
}

// ---------- the victim: files outside the store that no build may touch ----------

/** A fixed mtime (2001-09-09) so a touched victim is visible even when its content is rewritten identically. */
const VICTIM_TIME = 1_000_000_000;

export interface Victim {
  /** The victim directory, e.g. /tmp/tsbuild-victim-XXXX. */
  dir: string;
  /** A file in it with known content, mode 0640 and mtime. */
  file: string;
  /** A subdirectory (mode 0750) holding secret.txt. */
  subdir: string;
  /** The content of `file` and of `subdir/secret.txt` (distinctive, so a leak into an image is recognisable). */
  content: string;
  secret: string;
  /** Differences from the known state (empty when untouched). */
  check(): Promise<string[]>;
  /** Rewrites the known state after a violation, so it is reported once. */
  reset(): Promise<void>;
  remove(): Promise<void>;
}

export async function makeVictim(): Promise<Victim> {
  const dir = await mkdtemp("/tmp/tsbuild-victim-");
  const file = join(dir, "victim.txt");
  const subdir = join(dir, "victimdir");
  const content = `VICTIM-FILE-${uniqueSuffix()}\n`;
  const secret = `VICTIM-SECRET-${uniqueSuffix()}\n`;
  const reset = async (): Promise<void> => {
    await rm(subdir, { recursive: true, force: true });
    await rm(file, { force: true });
    await writeFile(file, content);
    await chmod(file, 0o640);
    await mkdir(subdir);
    await writeFile(join(subdir, "secret.txt"), secret);
    await chmod(join(subdir, "secret.txt"), 0o600);
    await chmod(subdir, 0o750);
    await chmod(dir, 0o755);
    for (const p of [join(subdir, "secret.txt"), file, subdir, dir]) await utimes(p, VICTIM_TIME, VICTIM_TIME);
  };
  await reset();
  const check = async (): Promise<string[]> => {
    const out: string[] = [];
    const expectEntry = async (p: string, mode: number, body?: string): Promise<void> => {
      let st;
      try {
        st = await lstat(p);
      } catch {
        out.push(`${p} is gone`);
        return;
      }
      if ((st.mode & 0o7777) !== mode) out.push(`${p} mode ${(st.mode & 0o7777).toString(8)} (was ${mode.toString(8)})`);
      if (st.uid !== 0 || st.gid !== 0) out.push(`${p} owner ${st.uid}:${st.gid} (was 0:0)`);
      if (Math.floor(st.mtimeMs / 1000) !== VICTIM_TIME) out.push(`${p} mtime changed`);
      if (body !== undefined && (await readFile(p, "utf8").catch(() => "")) !== body) out.push(`${p} content changed`);
    };
    await expectEntry(file, 0o640, content);
    await expectEntry(subdir, 0o750);
    await expectEntry(join(subdir, "secret.txt"), 0o600, secret);
    const names = (await readdir(dir).catch(() => [])).sort().join(",");
    if (names !== "victim.txt,victimdir") out.push(`${dir} now holds ${names}`);
    const inner = (await readdir(subdir).catch(() => [])).sort().join(",");
    if (inner !== "secret.txt") out.push(`${subdir} now holds ${inner}`);
    return out;
  };
  return { dir, file, subdir, content, secret, check, reset, remove: () => rm(dir, { recursive: true, force: true }) };
}

// ---------- processes, mounts, host state ----------

export interface ProcessInfo {
  pid: number;
  args: string;
}

/** Polls `what` every 50 ms until it holds or `ms` pass; the last answer. */
export async function waitFor(what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return what();
}

/** Every process whose command line contains `needle` (like `ps -eo pid,args | grep`), never this process. */
export async function processesWith(needle: string): Promise<ProcessInfo[]> {
  const out: ProcessInfo[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const raw = await readFile(`/proc/${name}/cmdline`).catch(() => undefined);
    if (!raw || raw.length === 0) continue;
    const args = raw.toString("utf8").split("\0").join(" ").trim();
    if (args.includes(needle)) out.push({ pid: Number(name), args });
  }
  return out;
}

/** SIGKILLs each pid (by pid only); returns the ones that existed. */
export function killPids(pids: number[]): number[] {
  const killed: number[] = [];
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

/** Lines of /proc/self/mountinfo whose mount point or source root mentions one of `needles`. */
export async function mountsMentioning(needles: string[]): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return (
    text
      .split("\n")
      .filter((l) => l !== "")
      .filter((l) => {
        const f = l.split(" ");
        const rootField = f[3] ?? "";
        const point = f[4] ?? "";
        return needles.some((n) => rootField.includes(n) || point.includes(n));
      })
      // The mount id and parent id change on remount; the paths and options are what matter.
      .map((l) => l.split(" ").slice(3).join(" "))
      .sort()
  );
}

export interface StatSummary {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: number;
}

async function statSummary(p: string): Promise<StatSummary> {
  const st = await stat(p);
  return { mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink, rdev: st.rdev };
}

export type ViolationKind = "victim" | "mount" | "process" | "created-on-host" | "dev-null" | "sysctl" | "dev-shm" | "etc-passwd";

export interface Violation {
  kind: ViolationKind;
  detail: string;
}

export interface HostWatchOptions {
  /** The suite's temp dir (stores, contexts). */
  suiteDir: string;
  victim: Victim;
  /** A unique argument of processes no build may leave behind (e.g. "1000.4242"). */
  marker: string;
  /** Prefix of host paths no build may create, e.g. "created-on-host-ab12" (looked for in /tmp). */
  createdPrefix: string;
  /** Prefix of files a RUN writes to its /dev/shm (must never reach the host's). */
  shmPrefix: string;
}

/** Read only, never written: a sandbox that can write them changes the whole machine. */
export const WATCHED_SYSCTLS = ["/proc/sys/kernel/printk_ratelimit_burst", "/proc/sys/kernel/core_pattern"];

export interface HostWatch {
  /** Everything that changed since start (or since the last check), repaired where the suite can do it safely. */
  check(): Promise<Violation[]>;
  /** Final cleanup: kills marked processes, removes created paths, restores /dev/null's mode/owner if changed. */
  cleanup(): Promise<Violation[]>;
}

/**
 * Snapshots the host state a build must not change. check() compares and repairs: it kills marked processes (by pid),
 * removes /tmp/<createdPrefix>* and /dev/shm/<shmPrefix>*, resets the victim and restores /dev/null's mode and owner
 * (a chmod/chown of the node itself, never a write to it) so every violation is reported once, by the build that did it.
 */
export async function startHostWatch(opts: HostWatchOptions): Promise<HostWatch> {
  const needles = [opts.suiteDir, "/tmp/created-on-host", opts.victim.dir];
  const mountsBefore = await mountsMentioning(needles);
  const devNull = await statSummary("/dev/null");
  const passwd = await statSummary("/etc/passwd");
  const passwdText = await readFile("/etc/passwd", "utf8");
  const sysctls = new Map<string, string>();
  for (const s of WATCHED_SYSCTLS) sysctls.set(s, await readFile(s, "utf8"));

  const check = async (): Promise<Violation[]> => {
    const v: Violation[] = [];
    for (const d of await opts.victim.check()) v.push({ kind: "victim", detail: d });
    if (v.some((x) => x.kind === "victim")) await opts.victim.reset();

    const now = await mountsMentioning(needles);
    for (const m of now) if (!mountsBefore.includes(m)) v.push({ kind: "mount", detail: m });

    // A pid namespace dies with its init, but the kernel reaps the rest asynchronously: give stragglers a moment.
    let procs = await processesWith(opts.marker);
    for (let i = 0; i < 20 && procs.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      procs = await processesWith(opts.marker);
    }
    if (procs.length > 0) {
      v.push({ kind: "process", detail: `${procs.length} processes with ${opts.marker} left, e.g. ${procs[0]?.pid} ${procs[0]?.args}` });
      killPids(procs.map((p) => p.pid));
    }

    for (const name of await readdir("/tmp")) {
      if (!name.startsWith(opts.createdPrefix)) continue;
      v.push({ kind: "created-on-host", detail: `/tmp/${name}` });
      await rm(join("/tmp", name), { recursive: true, force: true });
    }
    for (const name of await readdir("/dev/shm").catch(() => [] as string[])) {
      if (!name.startsWith(opts.shmPrefix)) continue;
      v.push({ kind: "dev-shm", detail: `/dev/shm/${name}` });
      await rm(join("/dev/shm", name), { force: true });
    }

    const dn = await statSummary("/dev/null");
    if (dn.mode !== devNull.mode || dn.uid !== devNull.uid || dn.gid !== devNull.gid || dn.rdev !== devNull.rdev) {
      v.push({
        kind: "dev-null",
        detail: `host /dev/null is now mode ${(dn.mode & 0o7777).toString(8)} owner ${dn.uid}:${dn.gid} (was ${(devNull.mode & 0o7777).toString(8)} ${devNull.uid}:${devNull.gid})`,
      });
      await chown("/dev/null", devNull.uid, devNull.gid).catch(() => undefined);
      await chmod("/dev/null", devNull.mode & 0o7777).catch(() => undefined);
    }
    const pw = await statSummary("/etc/passwd");
    if (pw.nlink !== passwd.nlink || pw.mode !== passwd.mode || (await readFile("/etc/passwd", "utf8")) !== passwdText)
      v.push({ kind: "etc-passwd", detail: `host /etc/passwd changed (links ${passwd.nlink} → ${pw.nlink})` });
    for (const [s, before] of sysctls) {
      const after = await readFile(s, "utf8");
      if (after !== before) v.push({ kind: "sysctl", detail: `${s} changed from ${JSON.stringify(before)} to ${JSON.stringify(after)}` });
    }
    return v;
  };
  return { check, cleanup: check };
}

// ---------- running builds ----------

export interface BuildRun {
  code: number;
  /** stdout and stderr of the CLI (plain progress goes to stderr). */
  output: string;
  ms: number;
  timedOut: boolean;
  /** `PROBE name value` lines printed by RUN steps, by name. */
  probes: Map<string, string>;
}

/** `PROBE <name> <value>` lines from `--progress=plain` output (`#N 0.123 PROBE ...`; the time is BuildKit's). */
export function probesOf(output: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of output.matchAll(/^#\d+ (?:\d+\.\d{3} )?PROBE (\S+) ?(.*)$/gm)) out.set(m[1] as string, (m[2] ?? "").trim());
  return out;
}

/** What must never appear in a build's output: a stack trace or the CLI's "this is a bug" fallback. */
export function crashSigns(output: string): string[] {
  const out: string[] = [];
  const frame = /^\s+at .*$/m.exec(output);
  if (frame) out.push(`stack trace: ${frame[0].trim()}`);
  if (output.includes("this is a bug")) out.push('"this is a bug" in output');
  return out;
}

/** Runs the CLI in-process with a time bound: on timeout the build is cancelled (as Ctrl-C would) and awaited. */
export async function runCli(args: string[], opts: { timeoutMs: number; onTimeout?: () => Promise<void>; env?: NodeJS.ProcessEnv }): Promise<BuildRun> {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on("data", (c: Buffer) => chunks.push(c));
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void (opts.onTimeout?.() ?? Promise.resolve()).finally(() => controller.abort());
  }, opts.timeoutMs);
  const t0 = Date.now();
  try {
    const code = await main(
      args,
      { stdout: sink, stderr: sink, isTTY: false, stdin: Readable.from([]), stdinIsTTY: false, stdoutIsTTY: false, cwd: REPO, env: opts.env ?? process.env },
      controller.signal,
    );
    const output = Buffer.concat(chunks).toString("utf8");
    return { code, output, ms: Date.now() - t0, timedOut, probes: probesOf(output) };
  } finally {
    clearTimeout(timer);
  }
}

// ---------- archives ----------

export interface TarEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "block-device" | "character-device" | "fifo";
  body?: Buffer | string;
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
}

/** A tar (uncompressed) of exactly these entries, names as given (no normalisation: hostile names stay hostile). */
export async function tarBuffer(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", () => resolve());
    pack.on("error", reject);
  });
  for (const e of entries) {
    const type = e.type ?? "file";
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    const header: Partial<tar.Header> & { name: string } = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: 0,
      gid: 0,
      uname: "root",
      gname: "root",
      mtime: new Date(VICTIM_TIME * 1000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
      ...(body ? { size: body.length } : { size: 0 }),
    };
    await new Promise<void>((resolve, reject) => pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A docker-archive (`docker save` format) of one single-layer image named `tag`. */
export async function writeDockerArchive(path: string, tag: string, layer: TarEntry[]): Promise<void> {
  const layerTar = await tarBuffer(layer);
  const diffId = `sha256:${createHash("sha256").update(layerTar).digest("hex")}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === "x64" ? "amd64" : process.arch,
      os: "linux",
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created_by: "hostile crafted layer" }],
    }),
  );
  const configName = `${createHash("sha256").update(config).digest("hex")}.json`;
  const manifest = JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: ["layer/layer.tar"] }]);
  await writeFile(
    path,
    await tarBuffer([
      { name: "layer/", type: "directory" },
      { name: "layer/layer.tar", body: layerTar },
      { name: configName, body: config },
      { name: "manifest.json", body: manifest },
    ]),
  );
}

export interface LayerEntry {
  name: string;
  type: string;
  mode: number;
  linkname?: string;
}

/** The entries of every layer of the image in an OCI layout directory, later layers winning (whiteouts not applied). */
export async function ociLayoutEntries(layout: string): Promise<Map<string, LayerEntry>> {
  const blob = (d: string) => join(layout, "blobs", ...d.split(":"));
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const manifestDigest = index.manifests[0]?.digest;
  if (!manifestDigest) throw new Error(`${layout}/index.json lists no manifest`);
  const manifest = JSON.parse(await readFile(blob(manifestDigest), "utf8")) as { layers: { digest: string; mediaType: string }[] };
  const out = new Map<string, LayerEntry>();
  for (const l of manifest.layers) {
    const ex = tar.extract();
    ex.on("entry", (h, stream, next) => {
      const name = h.name.replace(/^\.?\//, "").replace(/\/$/, "");
      out.set(name, { name, type: h.type ?? "file", mode: h.mode ?? 0, ...(h.linkname ? { linkname: h.linkname } : {}) });
      stream.on("end", () => next());
      stream.resume();
    });
    const src = createReadStream(blob(l.digest));
    if (l.mediaType.endsWith("gzip")) await pipeline(src, createGunzip(), ex);
    else await pipeline(src, ex);
  }
  return out;
}

// ---------- scanning for leaked secrets ----------

/** Regular files under `dir` whose bytes contain `needle`; `othersReadable` limits the scan to mode & 0o044. */
export async function filesContaining(dir: string, needle: string, opts: { othersReadable?: boolean } = {}): Promise<string[]> {
  const found: string[] = [];
  const want = Buffer.from(needle);
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await lstat(p).catch(() => undefined);
        if (!st || st.size > 256 * 1024 * 1024) continue;
        if (opts.othersReadable && (st.mode & 0o044) === 0) continue;
        if (await fileContains(p, want)) found.push(p);
      }
    }
  };
  await walk(dir);
  return found;
}

async function fileContains(p: string, want: Buffer): Promise<boolean> {
  let tail = Buffer.alloc(0);
  try {
    for await (const chunk of createReadStream(p) as AsyncIterable<Buffer>) {
      const buf = Buffer.concat([tail, chunk]);
      if (buf.includes(want)) return true;
      tail = buf.subarray(Math.max(0, buf.length - want.length + 1));
    }
  } catch {
    // vanished while scanning (a step's scratch files come and go)
  }
  return false;
}

// ---------- a loopback server a sandbox must not reach ----------

export interface TokenServer {
  port: number;
  /** The body every request gets: a sandbox that prints it reached the host's loopback. */
  token: string;
  close(): Promise<void>;
}

export async function startTokenServer(): Promise<TokenServer> {
  const token = `HOSTILE-TOKEN-${uniqueSuffix()}`;
  const server: Server = createServer((_req, res) => res.end(token + "\n"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------- small fs helpers ----------

/** Opens a FIFO for writing without blocking and closes it: a reader stuck on it gets EOF. */
export async function unblockFifo(path: string): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
  await fh?.close();
}

/** Paths of block and character devices below `dir`. */
export async function deviceNodesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isBlockDevice() || e.isCharacterDevice()) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

export async function readlinkOrUndefined(p: string): Promise<string | undefined> {
  return readlink(p).catch(() => undefined);
}

export async function readOrUndefined(p: string): Promise<string | undefined> {
  return readFile(p, "utf8").catch(() => undefined);
}
