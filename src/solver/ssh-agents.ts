// The SSH agents of one build (buildx's --ssh): an existing agent socket, or an ssh-agent tsbuild starts with the
// given key files and stops by PID when the build ends. RUN --mount=type=ssh reaches them through a per-RUN proxy
// socket (run-mounts.ts); key material only ever lives in the agent process, never in a file tsbuild writes.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { BuildError, EnvironmentError, UsageError } from "../errors.js";
import type { SourceRange } from "../frontend/types.js";

/** What one --ssh id names: host paths, each an agent socket or a private key file (decided when first used). */
export interface SshSource {
  paths: string[];
}

/**
 * The CLI's `--ssh default`, `--ssh default=PATH[,PATH…]` or `--ssh ID=PATH[,PATH…]`. `default` alone (or `ID`
 * alone) means $SSH_AUTH_SOCK. Paths are made absolute against `cwd`.
 */
export function parseSshFlag(value: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): [string, SshSource] {
  const eq = value.indexOf("=");
  const id = (eq < 0 ? value : value.slice(0, eq)).trim();
  if (!/^[A-Za-z0-9_.-]+$/.test(id))
    throw new UsageError("BAD_FLAG_VALUE", `--ssh ${value}: expected ID[=SOCKET|KEY[,KEY…]], e.g. --ssh default or --ssh github=~/.ssh/id_ed25519`);
  const paths =
    eq < 0
      ? []
      : value
          .slice(eq + 1)
          .split(",")
          .map((p) => p.trim())
          .filter((p) => p !== "");
  if (paths.length === 0) {
    const sock = env.SSH_AUTH_SOCK;
    if (!sock)
      throw new UsageError("BAD_FLAG_VALUE", `--ssh ${value}: no socket or key given and $SSH_AUTH_SOCK is not set`, {
        hint: `start an agent (eval $(ssh-agent) && ssh-add) or name a key: --ssh ${id}=~/.ssh/id_ed25519`,
      });
    return [id, { paths: [resolvePath(cwd, sock)] }];
  }
  const home = env.HOME ?? "";
  return [id, { paths: paths.map((p) => resolvePath(cwd, p.startsWith("~/") && home ? join(home, p.slice(2)) : p)) }];
}

export interface SshAgents {
  /** The host agent socket for `id`, starting an agent for key files on first use; undefined when no --ssh gave it. */
  socket(id: string): Promise<string | undefined>;
  /** Stops the agents tsbuild started (by PID) and removes their sockets. */
  close(): Promise<void>;
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function sshAdd(sock: string, keys: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // No terminal and no askpass: a key with a passphrase fails here instead of prompting in the middle of a build.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", SSH_AUTH_SOCK: sock, SSH_ASKPASS_REQUIRE: "never" };
    const child = execFile("ssh-add", ["-q", "--", ...keys], { env, timeout: 30_000 }, (err, _o, stderr) =>
      err ? reject(Object.assign(err, { stderr: String(stderr) })) : resolve(),
    );
    child.stdin?.end();
  });
}

/** The agents for `sources`, started lazily. */
export function sshAgents(sources: ReadonlyMap<string, SshSource>): SshAgents {
  const started = new Map<string, Promise<string>>();
  const cleanups: (() => Promise<void>)[] = [];

  const start = async (id: string, source: SshSource): Promise<string> => {
    const sockets: string[] = [];
    const keys: string[] = [];
    for (const p of source.paths) {
      const st = await stat(p).catch((e: NodeJS.ErrnoException) => {
        throw new UsageError("BAD_FLAG_VALUE", `--ssh ${id}: cannot read ${p}: ${e.code ?? String(e)}`, { cause: e });
      });
      (st.isSocket() ? sockets : keys).push(p);
    }
    if (sockets.length > 1 || (sockets.length === 1 && keys.length > 0))
      throw new UsageError("BAD_FLAG_VALUE", `--ssh ${id}: give one agent socket or key files, not both`);
    if (sockets.length === 1) return sockets[0] as string;
    const dir = await mkdtemp(join(tmpdir(), "tsbuild-agent-"));
    const sock = join(dir, "agent.sock");
    // -D: the agent stays our child, so its PID is the one we stop (never a daemon we would have to find by name).
    const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    let stderr = "";
    agent.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<NodeJS.ErrnoException | number | null>((r) => {
      agent.once("error", (e) => r(e));
      agent.once("exit", (code) => r(code));
    });
    cleanups.push(async () => {
      if (agent.exitCode === null && agent.signalCode === null && agent.pid !== undefined) {
        process.kill(agent.pid, "SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    });
    for (let i = 0; ; i++) {
      // The socket file exists from bind(), before listen(): only a connection that succeeds means ready.
      if (await accepts(sock)) break;
      if (agent.exitCode !== null || agent.signalCode !== null || i > 200) {
        const why = await Promise.race([exited, sleep(10).then(() => undefined)]);
        if (why instanceof Error && why.code === "ENOENT")
          throw new EnvironmentError("TOOL_MISSING", `--ssh ${id}: key files need ssh-agent, which is not on PATH`, {
            hint: "apt-get install -y openssh-client",
          });
        throw new EnvironmentError("TOOL_MISSING", `--ssh ${id}: ssh-agent did not start: ${stderr.trim() || "no socket appeared"}`);
      }
      await sleep(10);
    }
    try {
      await sshAdd(sock, keys);
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      if (err.code === "ENOENT")
        throw new EnvironmentError("TOOL_MISSING", `--ssh ${id}: key files need ssh-add, which is not on PATH`, { hint: "apt-get install -y openssh-client" });
      throw new UsageError("BAD_FLAG_VALUE", `--ssh ${id}: cannot load ${keys.join(", ")}: ${err.stderr?.trim() || err.message}`, {
        hint: "the key must be a private key file without a passphrase, or load it into your agent and pass --ssh default",
        cause: e,
      });
    }
    return sock;
  };

  return {
    socket(id) {
      const source = sources.get(id);
      if (!source) return Promise.resolve(undefined);
      let p = started.get(id);
      if (!p) {
        p = start(id, source);
        started.set(id, p);
      }
      return p;
    },
    async close() {
      await Promise.allSettled([...started.values()]);
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    },
  };
}

/** The error for a required ssh id no --ssh flag gave. */
export function sshNotFound(id: string, range?: SourceRange): BuildError {
  return new BuildError("SSH_NOT_FOUND", `RUN --mount=type=ssh,required: no SSH agent or keys were given for ssh id ${JSON.stringify(id)}`, {
    ...(range ? { range } : {}),
    hint: id === "default" ? "pass --ssh default (your $SSH_AUTH_SOCK) or --ssh default=<key file>" : `pass --ssh ${id}=<socket or key file>`,
  });
}
