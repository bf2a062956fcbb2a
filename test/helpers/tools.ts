// Real external tools used by integration tests; a missing tool fails with the apt package to install (never a silent skip).
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

const PACKAGES: Record<string, string> = {
  skopeo: "skopeo",
  umoci: "umoci",
  busybox: "busybox-static",
  crun: "crun",
  runc: "runc",
  bwrap: "bubblewrap",
  tar: "tar",
  prlimit: "util-linux",
  docker: "docker.io",
  dockerd: "docker.io",
  unshare: "util-linux",
  setpriv: "util-linux",
  slirp4netns: "slirp4netns",
  mount: "mount",
  umount: "mount",
  containerd: "containerd",
  git: "git",
  xz: "xz-utils",
  pigz: "pigz",
  zstd: "zstd",
};

export async function requireTool(name: string): Promise<void> {
  try {
    await run("sh", ["-c", `command -v ${name}`]);
  } catch {
    throw new Error(`${name} is not installed: apt-get install -y ${PACKAGES[name] ?? name} (see .ci/run)`);
  }
}

export async function exec(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  await requireTool(cmd);
  return run(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...opts });
}
