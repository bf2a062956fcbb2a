// RUN's default network, like Docker's bridge: each RUN gets its own network namespace whose only way out is
// slirp4netns, a user-mode TCP/IP stack running in the host's namespace that refuses to connect to the host's
// 127.0.0.1 (--disable-host-loopback). Nothing is kept on disk, so a SIGKILLed tsbuild leaves nothing behind.
import { spawn, type ChildProcess } from "node:child_process";
import { access, constants, open, stat, type FileHandle } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { AbortError, EnvironmentError, throwIfAborted } from "../errors.js";
import { findOnPath } from "./select-executor.js";
import { runQuiet } from "./spawn-sandbox.js";
import { RUN_NETWORK_RESOLV_CONF } from "./hosts.js";

export interface RunNetwork {
  /**
   * A path naming the network namespace, valid until release() (it is /proc/<tsbuild pid>/fd/<n>, so only for
   * processes in tsbuild's pid namespace): crun/runc `linux.namespaces: [{ type: "network", path }]`;
   * bwrap: run it as `nsenter --net=PATH bwrap ...` without --unshare-net.
   */
  nsPath: string;
  /** The RUN's /etc/resolv.conf: slirp's DNS forwarder, which relays to the host's own resolvers. */
  resolvConf: string;
  /** Stops slirp4netns and drops our hold on the namespace; idempotent, never rejects. */
  release(): Promise<void>;
}

export interface CreateRunNetworkOptions {
  /** Aborts creation (AbortError, nothing left behind); has no effect once the network is returned. */
  signal: AbortSignal;
}

export { RUN_NETWORK_RESOLV_CONF } from "./hosts.js";

const INSTALL_HINT = "apt-get install -y slirp4netns";
const READY_TIMEOUT_MS = 10_000;
const EXIT_GRACE_MS = 1_000;

/**
 * Creates the namespace and starts slirp4netns in it. The namespace lives as long as tsbuild holds an fd to it (or a
 * process of the RUN is inside); slirp4netns watches a socket of ours (--exit-fd) that the kernel closes when we die,
 * even by SIGKILL, so it never outlives tsbuild.
 */
export async function createRunNetwork(opts: CreateRunNetworkOptions): Promise<RunNetwork> {
  throwIfAborted(opts.signal);
  const ns = await openNewNetns(opts.signal);
  const nsPath = `/proc/${process.pid}/fd/${ns.fd}`;
  let slirp: Slirp;
  try {
    slirp = await startSlirp(nsPath, opts.signal);
  } catch (e) {
    await ns.close().catch(() => undefined);
    throw e;
  }
  let released: Promise<void> | undefined;
  return {
    nsPath,
    resolvConf: RUN_NETWORK_RESOLV_CONF,
    release() {
      released ??= (async () => {
        await slirp.stop();
        await ns.close().catch(() => undefined);
      })();
      return released;
    },
  };
}

/** Is RUN's default network possible here: slirp4netns on PATH, /dev/net/tun, and may we create a netns? */
export async function probeUserNet(): Promise<{ ok: true; tool: string } | { ok: false; reason: string; hint: string }> {
  const tool = await findOnPath("slirp4netns");
  if (tool === undefined) return { ok: false, reason: "slirp4netns is not on PATH", hint: INSTALL_HINT };
  try {
    await access("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, reason: "/dev/net/tun is missing or not accessible", hint: "load the tun module (`modprobe tun`) or give tsbuild /dev/net/tun" };
  }
  const r = await runQuiet("unshare", ["--net", "true"]);
  if (r.code !== 0) {
    return { ok: false, reason: `cannot create a network namespace (unshare --net): ${lastLine(r.stderr) || `exit ${r.code}`}`, hint: NETNS_HINT };
  }
  return { ok: true, tool };
}

const NETNS_HINT =
  "network namespaces need root or a user namespace (an ordinary user's tsbuild makes one), or use RUN --network=host; `tsbuild doctor` checks user namespaces and slirp4netns";

/**
 * A fresh network namespace, held by an fd of ours. A transient `unshare --net` child says when it is inside the new
 * namespace; we open its /proc/PID/ns/net, then let it exit. No bind-mounted ns file: nothing to unmount or reap.
 */
async function openNewNetns(signal: AbortSignal): Promise<FileHandle> {
  // `read` blocks until we close its stdin, so the pid cannot exit (and be reused) before we have opened the ns.
  const child = spawn("unshare", ["--net", "--", "sh", "-c", "echo; read _"], { stdio: ["pipe", "pipe", "pipe"] });
  const proc = track(child);
  const fail = (detail: string): EnvironmentError =>
    new EnvironmentError("NETNS_FAILED", `cannot set up RUN's network: unshare --net failed: ${detail}`, { hint: NETNS_HINT });
  try {
    await waitReady(child.stdout as Readable, proc.ended, signal, fail);
    const ns = await open(`/proc/${child.pid}/ns/net`, "r");
    // Never hand out the host's namespace (a RUN would then silently share the host network).
    const [got, host] = await Promise.all([ns.stat(), stat("/proc/self/ns/net")]);
    if (got.ino === host.ino && got.dev === host.dev) {
      await ns.close();
      throw fail("it did not create a new network namespace");
    }
    // EOF ends `read`; not awaited: the child has nothing left to do and cannot outlive its stdin.
    (child.stdin as Writable).end();
    return ns;
  } catch (e) {
    (child.stdin as Writable).end();
    child.kill("SIGKILL");
    await proc.exited;
    if (e instanceof AbortError || e instanceof EnvironmentError) throw e;
    throw new EnvironmentError("NETNS_FAILED", `cannot open RUN's new network namespace: ${String(e)}`, { hint: NETNS_HINT, cause: e });
  }
}

interface Slirp {
  stop(): Promise<void>;
}

async function startSlirp(nsPath: string, signal: AbortSignal): Promise<Slirp> {
  // slirp4netns runs as real root and parses whatever the RUN sends: sandbox it (own mount namespace, capabilities
  // dropped) and seccomp it, as podman and rootlesskit do; together they cost ≈3 ms.
  const args = [
    "--configure",
    "--mtu=65520",
    "--disable-host-loopback",
    "--enable-sandbox",
    "--enable-seccomp",
    "--netns-type=path",
    "--ready-fd=3",
    "--exit-fd=4",
    nsPath,
    "tap0",
  ];
  // fds 3 and 4 are socketpairs: slirp writes "1" to 3 once tap0 (and lo) are up; it exits when 4 reads EOF, which
  // happens when we close our end or the kernel does because we died. Verified with kill -9 (see the tests).
  const child = spawn("slirp4netns", args, { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  const proc = track(child);
  const exitSock = child.stdio[4] as Writable | null;
  // A forgotten release() must not keep tsbuild from exiting; exiting closes the socket and slirp follows.
  child.unref();
  for (const s of [child.stderr, child.stdio[3], exitSock] as ({ unref?: () => void } | null)[]) s?.unref?.();

  let exited = false;
  void proc.exited.then(() => (exited = true));
  const stop = async (): Promise<void> => {
    exitSock?.destroy();
    if (exited) return;
    const t = setTimeout(() => child.kill("SIGKILL"), EXIT_GRACE_MS);
    await proc.exited;
    clearTimeout(t);
  };
  const fail = (detail: string): EnvironmentError =>
    proc.notFound()
      ? new EnvironmentError("NO_SLIRP4NETNS", "RUN's default network needs slirp4netns, which is not on PATH", {
          hint: `${INSTALL_HINT} (or use RUN --network=host); \`tsbuild doctor\` checks what else RUN needs`,
        })
      : new EnvironmentError("SLIRP_FAILED", `cannot set up RUN's network: slirp4netns failed: ${detail}`, {
          hint: `check that slirp4netns works here (${INSTALL_HINT}) and /dev/net/tun is usable (rootless: mode 0666), or use RUN --network=host; \`tsbuild doctor\` checks both`,
        });
  try {
    await waitReady(child.stdio[3] as Readable, proc.ended, signal, fail);
    return { stop };
  } catch (e) {
    child.kill("SIGKILL");
    await stop();
    throw e;
  }
}

interface Tracked {
  /** Settles when the process has exited, or failed to start. */
  exited: Promise<void>;
  /** Settles after exit once stderr is read (or 100 ms later), with what went wrong in a few words. */
  ended: Promise<string>;
  notFound(): boolean;
}

/** Follows a child's end: keeps draining its stderr (so it can never block on a full pipe) and keeps the tail. */
function track(child: ChildProcess): Tracked {
  let tail = "";
  let spawnErr: NodeJS.ErrnoException | undefined;
  child.stderr?.on("data", (c: Buffer) => (tail = (tail + c.toString("utf8")).slice(-2000)));
  const stderrDone = new Promise<void>((resolve) => (child.stderr ? child.stderr.once("close", () => resolve()) : resolve()));
  const exited = new Promise<string>((resolve) => {
    child.once("exit", (code, sig) => resolve(sig ? `killed by ${sig}` : `exit ${code}`));
    child.once("error", (err: NodeJS.ErrnoException) => {
      spawnErr = err;
      resolve(err.message);
    });
  });
  // "exit", not "close": "close" also waits for fds we keep open ourselves (slirp's --exit-fd).
  const ended = exited.then(async (status) => {
    await Promise.race([stderrDone, new Promise((r) => setTimeout(r, 100))]);
    return lastLine(tail) || status;
  });
  return { exited: exited.then(() => undefined), ended, notFound: () => spawnErr?.code === "ENOENT" };
}

/** Resolves at the first byte on `ready`; rejects if the process ends first, the signal fires or it takes too long. */
function waitReady(ready: Readable, ended: Promise<string>, signal: AbortSignal, fail: (detail: string) => EnvironmentError): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const done = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      ready.off("data", onData);
      ready.resume(); // read on to EOF
      if (err) reject(err);
      else resolve();
    };
    const onData = (): void => done();
    const onAbort = (): void => done(new AbortError());
    // A ref'd timer keeps the event loop alive while we wait on unref'd handles.
    const timer = setTimeout(() => done(fail(`not ready within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
    ready.on("data", onData);
    void ended.then((detail) => done(fail(detail)));
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
  });
}

function lastLine(s: string): string {
  const lines = s
    .trim()
    .split("\n")
    .filter((l) => l.trim() !== "");
  return (lines[lines.length - 1] ?? "").trim();
}
