// `--load`: hands the built image to a running Docker engine by streaming a docker-archive into `docker load`'s
// stdin (nothing is written to disk). Whether there is an engine to talk to is checked before a build runs.
import { spawn } from "node:child_process";
import { access, constants, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { AbortError, EnvironmentError } from "../errors.js";
import type { ContentStore } from "../store/types.js";
import type { Descriptor } from "../image/types.js";
import { exportDockerArchive } from "./docker-archive.js";

export interface DockerEngine {
  /** The docker CLI's path. */
  docker: string;
  /** Where it will connect (DOCKER_HOST, else the default socket), for messages. */
  host: string;
  env: NodeJS.ProcessEnv;
}

const DEFAULT_SOCKET = "/var/run/docker.sock";

async function onPath(bin: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, bin);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

/**
 * The docker CLI and its engine, or a clear error: no `docker` on PATH, or a unix socket (DOCKER_HOST or the
 * default) that is not there. Cheap, so `--load` fails before a long build; a tcp:// or ssh:// host is left to
 * `docker load` itself, as is a DOCKER_CONTEXT.
 */
export async function findDockerEngine(env: NodeJS.ProcessEnv): Promise<DockerEngine> {
  const docker = await onPath("docker", env.PATH ?? "");
  if (!docker)
    throw new EnvironmentError("NO_DOCKER", "--load needs the docker CLI, which is not on PATH", {
      hint: "apt-get install -y docker.io, or write the image to a file instead: -o type=docker,dest=image.tar",
    });
  const host = env.DOCKER_HOST && env.DOCKER_HOST !== "" ? env.DOCKER_HOST : `unix://${DEFAULT_SOCKET}`;
  if (host.startsWith("unix://") && !env.DOCKER_CONTEXT) {
    const socket = host.slice("unix://".length);
    const st = await stat(socket).catch(() => undefined);
    if (!st?.isSocket())
      throw new EnvironmentError("NO_DOCKER", `--load: no Docker engine is running at ${host} (${socket} ${st ? "is not a socket" : "does not exist"})`, {
        hint: "start the Docker daemon (`systemctl start docker`) or point DOCKER_HOST at one; or save the image: -o type=docker,dest=image.tar",
      });
  }
  return { docker, host, env };
}

/** Streams the image as a docker-archive into `docker load`; resolves with what docker printed ("Loaded image: …"). */
export async function loadIntoDocker(
  engine: DockerEngine,
  store: ContentStore,
  image: { names: string[]; manifest: Descriptor },
  signal?: AbortSignal,
): Promise<string> {
  const child = spawn(engine.docker, ["load"], { stdio: ["pipe", "pipe", "pipe"], env: engine.env });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number>((resolve, reject) => {
    child.on("error", (cause) => reject(new EnvironmentError("NO_DOCKER", `--load: cannot run ${engine.docker}: ${cause.message}`, { cause })));
    child.on("close", (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
  exited.catch(() => undefined);
  const onAbort = () => child.kill("SIGTERM");
  signal?.addEventListener("abort", onAbort, { once: true });
  const failed = (detail: string, cause?: unknown) =>
    new EnvironmentError("DOCKER_LOAD_FAILED", `--load: docker load (${engine.host}) failed: ${detail}`, {
      hint: "check `docker info`; or save the image to a file: -o type=docker,dest=image.tar",
      ...(cause !== undefined ? { cause } : {}),
    });
  try {
    try {
      await exportDockerArchive(store, [image], "docker load", { what: "--load: the stdin of", stream: child.stdin, ...(signal ? { signal } : {}) });
      child.stdin.end();
    } catch (e) {
      child.stdin.destroy();
      const code = await exited.catch(() => -1);
      if (signal?.aborted) throw new AbortError();
      // docker went away early (daemon refused the archive): its own words say more than a broken pipe.
      if (code !== 0 && stderr.trim() !== "") throw failed(stderr.trim(), e);
      throw e;
    }
    const code = await exited;
    if (signal?.aborted) throw new AbortError();
    if (code !== 0) throw failed(stderr.trim() || `exit status ${code}`);
    return stdout.trim();
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
