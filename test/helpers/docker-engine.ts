// A private Docker engine for tests that hand images to docker (--load): Debian's dockerd and containerd (package
// docker.io) on sockets and data dirs under the test's temp dir, vfs storage, and dockerd in a network namespace of
// its own (util-linux `unshare --net`): with --bridge=none dockerd deletes the host's docker0, which would break a
// daemon the machine runs. Stopped by PID; a missing binary fails with the package to install.
import { spawn, type ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { requireTool } from "./tools.js";

const run = promisify(execFile);

export interface DockerEngine {
  /** DOCKER_HOST for it. */
  host: string;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function startDockerEngine(dir: string): Promise<DockerEngine> {
  for (const tool of ["dockerd", "containerd", "docker", "unshare"]) await requireTool(tool);
  await mkdir(dir, { recursive: true });
  const log = await open(join(dir, "engine.log"), "a");
  const ctdSock = join(dir, "containerd.sock");
  const sock = join(dir, "docker.sock");
  const containerd = spawn("containerd", ["--root", join(dir, "ctd-root"), "--state", join(dir, "ctd-state"), "--address", ctdSock], {
    stdio: ["ignore", log.fd, log.fd],
  });
  // unshare execs dockerd: the child's PID is dockerd's.
  const dockerd = spawn(
    "unshare",
    [
      "--net",
      "dockerd",
      ...["--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"), "--pidfile", join(dir, "dockerd.pid")],
      ...["-H", `unix://${sock}`, "--containerd", ctdSock, "--iptables=false", "--bridge=none", "--storage-driver=vfs"],
    ],
    { stdio: ["ignore", log.fd, log.fd] },
  );
  const stop = async () => {
    await stopChild(dockerd);
    await stopChild(containerd);
    await log.close();
  };
  const host = `unix://${sock}`;
  for (let i = 0; i < 150; i++) {
    const up = await run("docker", ["info"], { env: { ...process.env, DOCKER_HOST: host } }).then(
      () => true,
      () => false,
    );
    if (up) return { host, stop };
    if (dockerd.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`dockerd did not start; see ${join(dir, "engine.log")}`);
}
