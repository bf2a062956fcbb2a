// A minimal busybox rootfs for sandbox tests: /bin/busybox from busybox-static with its applet symlinks,
// /etc/passwd (root, app 1000:1000), /etc/group and a sticky /tmp.
import { execFile } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { requireTool } from "./tools.js";

const run = promisify(execFile);

/** Creates the rootfs at `dir` (default: a fresh temp dir) and returns its path. */
export async function makeBusyboxRootfs(dir?: string): Promise<string> {
  await requireTool("busybox");
  const root = dir ?? (await mkdtemp(join(tmpdir(), "tsbuild-bbroot-")));
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755); // mkdtemp makes 0700, which would lock out non-root users in the sandbox
  await mkdir(join(root, "bin"), { recursive: true });
  await copyFile("/bin/busybox", join(root, "bin/busybox"));
  await chmod(join(root, "bin/busybox"), 0o755);
  const { stdout } = await run("/bin/busybox", ["--list-full"]);
  for (const line of stdout.split("\n")) {
    const rel = line.trim();
    if (rel === "" || rel === "bin/busybox") continue;
    const target = join(root, rel);
    await mkdir(dirname(target), { recursive: true });
    await symlink("/bin/busybox", target).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
  }
  await mkdir(join(root, "etc"), { recursive: true });
  await writeFile(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
  await writeFile(join(root, "etc/group"), "root:x:0:\nwheel:x:10:app\napp:x:1000:\n");
  await mkdir(join(root, "root"), { mode: 0o700 });
  await mkdir(join(root, "tmp"));
  await chmod(join(root, "tmp"), 0o1777);
  return root;
}
