// RUN's default network, like Docker's bridge: each RUN gets its own network namespace whose only way out is
// slirp4netns, a user-mode TCP/IP stack running in the host's namespace that refuses to connect to the host's
// 127.0.0.1 (--disable-host-loopback). Nothing is kept on disk, so a SIGKILLed tsbuild leaves nothing behind.
import { spawn, type ChildProcess } from "node:child_process";
import { access, constants, open, type FileHandle } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { AbortError, EnvironmentError, throwIfAborted } from "../errors.js";
import { findOnPath } from "./select-executor.js";
import { runQuiet } from "./spawn-sandbox.js";

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

/** slirp4netns's fixed layout for its default 10.0.2.0/24: the RUN is 10.0.2.100, gateway .2, DNS .3. */
export const RUN_NETWORK_RESOLV_CONF = "nameserver 10.0.2.3\n";

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

const NETNS_HINT = "run tsbuild as root (it needs CAP_SYS_ADMIN for network namespaces), or use RUN --network=host";

/**
 * A fresh network namespace, held by an fd of ours. A transient `unshare --net` child says when it is inside the new
 * namespace; we open its /proc/PID/ns/net, then let it exit. No bind-mounted ns file: nothing to unmount or reap.
 */
async function openNewNetns(signal: AbortSignal): Promise<FileHandle> {
  let child: ChildProcess;
  try {
    // `read` blocks until we close its stdin, so the pid cannot exit (and be reused) before we have opened the ns.
    child = spawn("unshare", ["--net", "--", "sh", "-c", "echo; read _"], { stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    throw new EnvironmentError("NETNS_FAILED", `cannot start unshare to create RUN's network namespace: ${String(e)}`, { hint: NETNS_HINT, cause: e });
  }
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  try {
    await waitForOutput(child, child.stdout as Readable, signal, "unshare --net");
    const ns = await open(`/proc/${child.pid}/ns/net`, "r");
    // EOF ends `read`; not awaited: the child has nothing left to do and cannot outlive its stdin.
    (child.stdin as Writable).end();
    return ns;
  } catch (e) {
    (child.stdin as Writable).end();
    child.kill("SIGKILL");
    await exited;
    if (e instanceof AbortError || e instanceof EnvironmentError) throw e;
    throw new EnvironmentError("NETNS_FAILED", `cannot open RUN's new network namespace: ${String(e)}`, { hint: NETNS_HINT, cause: e });
  }
}

interface Slirp {
  stop(): Promise<void>;
}

async function startSlirp(nsPath: string, signal: AbortSignal): Promise<Slirp> {
  const args = ["--configure", "--mtu=65520", "--disable-host-loopback", "--netns-type=path", "--ready-fd=3", "--exit-fd=4", nsPath, "tap0"];
  // fds 3 and 4 are socketpairs: slirp writes "1" to 3 once tap0 (and lo) are up; it exits when 4 reads EOF, which
  // happens when we close our end or the kernel does because we died. Verified with kill -9 (see the tests).
  const child = spawn("slirp4netns", args, { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    const onEnd = (): void => {
      exited = true;
      resolve();
    };
    child.once("exit", onEnd);
    child.once("error", onEnd); // not started (ENOENT): there will be no "exit"
  });
  const spawnError = new Promise<never>((_, reject) => {
    child.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "ENOENT"
          ? new EnvironmentError("NO_SLIRP4NETNS", "RUN's default network needs slirp4netns, which is not on PATH", { hint: `${INSTALL_HINT} (or use RUN --network=host)`, cause: err })
          : new EnvironmentError("SLIRP_FAILED", `cannot start slirp4netns: ${err.message}`, { cause: err }),
      ),
    );
  });
  spawnError.catch(() => undefined);
  // Keep draining stderr (slirp logs to it) so it can never block on a full pipe; remember the tail for errors.
  let stderrTail = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderrTail = (stderrTail + c.toString("utf8")).slice(-2000);
  });
  const exitSock = child.stdio[4] as Writable;
  // A forgotten release() must not keep tsbuild from exiting; exiting closes the socket and slirp follows.
  child.unref();
  for (const s of [child.stderr, child.stdio[3], exitSock] as ({ unref?: () => void } | null)[]) s?.unref?.();

  const stop = async (): Promise<void> => {
    exitSock.destroy();
    if (!exited) {
      const t = setTimeout(() => child.kill("SIGKILL"), EXIT_GRACE_MS);
      await exit;
      clearTimeout(t);
    }
  };
  try {
    await Promise.race([waitForOutput(child, child.stdio[3] as Readable, signal, "slirp4netns", () => stderrTail), spawnError]);
    return { stop };
  } catch (e) {
    child.kill("SIGKILL");
    await stop();
    throw e;
  }
}

/** Resolves at the first byte on `stream`; rejects if the process ends first, the signal fires or it takes too long. */
function waitForOutput(child: ChildProcess, stream: Readable, signal: AbortSignal, what: string, stderr?: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let errText = "";
    if (!stderr) child.stderr?.on("data", (c: Buffer) => (errText = (errText + c.toString("utf8")).slice(-2000)));
    const done = (err?: Error): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      stream.off("data", onData);
      stream.resume(); // keep reading to EOF so the child's "close" can fire
      child.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onData = (): void => done();
    const onAbort = (): void => done(new AbortError());
    const onClose = (code: number | null, sig: NodeJS.Signals | null): void => {
      const detail = lastLine(stderr ? stderr() : errText) || (sig ? `killed by ${sig}` : `exit ${code}`);
      const hint = what === "slirp4netns" ? `check that slirp4netns works here (${INSTALL_HINT}), or use RUN --network=host` : NETNS_HINT;
      done(new EnvironmentError(what === "slirp4netns" ? "SLIRP_FAILED" : "NETNS_FAILED", `cannot set up RUN's network: ${what} failed: ${detail}`, { hint }));
    };
    // A ref'd timer keeps the event loop alive while we wait on unref'd handles.
    const timer = setTimeout(
      () => done(new EnvironmentError(what === "slirp4netns" ? "SLIRP_FAILED" : "NETNS_FAILED", `cannot set up RUN's network: ${what} did not get ready within ${READY_TIMEOUT_MS / 1000} s`)),
      READY_TIMEOUT_MS,
    );
    stream.on("data", onData);
    child.on("close", onClose);
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();
  });
}

function lastLine(s: string): string {
  const lines = s.trim().split("\n").filter((l) => l.trim() !== "");
  return (lines[lines.length - 1] ?? "").trim();
}
