// Mount targets resolved inside the rootfs before any sandbox sees them: a symlink planted in the image (`/c ->
// /oldroot/tmp`, `/etc/hosts -> ../../host/path`), `..` or `/proc/self/root` can never steer a mount onto the host.
import { BuildError } from "../errors.js";
import { containerPathOf, resolveInRoot } from "../fs/rootfs-path.js";
import type { BindMount } from "./types.js";

/** Kernel filesystems the sandbox mounts itself: a mount beneath them would be resolved against the host's view. */
const RESERVED = ["/proc", "/sys", "/dev"];
/** Our own mounts under /dev (heredoc scripts); their names are checked by the caller. */
const OWN_DEV_PREFIX = "/dev/pipes/";

function underReserved(p: string): string | undefined {
  return RESERVED.find((r) => p === r || p.startsWith(`${r}/`));
}

/**
 * The container path `target` really names in `rootfs`, with every symlink resolved as the container would (absolute
 * links re-rooted, `..` clamped at `/`). Rejects `/` itself and anything under /proc, /sys or /dev.
 */
export async function resolveMountTarget(rootfs: string, target: string, what = "mount target"): Promise<string> {
  const lexical =
    "/" +
    target
      .split("/")
      .filter((c) => c !== "" && c !== ".")
      .join("/");
  if (lexical.startsWith(OWN_DEV_PREFIX) && !lexical.slice(OWN_DEV_PREFIX.length).includes("/")) {
    const name = lexical.slice(OWN_DEV_PREFIX.length);
    if (name !== "" && name !== "..") return lexical;
  }
  const resolved = containerPathOf(rootfs, await resolveInRoot(rootfs, target));
  if (resolved === "/") {
    throw new BuildError("BAD_MOUNT_TARGET", `${what} ${JSON.stringify(target)} resolves to / in the image: a mount cannot replace the root`);
  }
  const reserved = underReserved(resolved);
  if (reserved !== undefined) {
    throw new BuildError(
      "BAD_MOUNT_TARGET",
      `${what} ${JSON.stringify(target)} resolves to ${resolved}, inside ${reserved}, which the sandbox provides itself`,
      { hint: "mount somewhere else, e.g. under /mnt or /run" },
    );
  }
  return resolved;
}

/** `mounts` with each destination replaced by the path it resolves to in `rootfs` (see resolveMountTarget). */
export async function resolveMountTargets(rootfs: string, mounts: readonly BindMount[]): Promise<BindMount[]> {
  const out: BindMount[] = [];
  for (const m of mounts) out.push({ ...m, destination: await resolveMountTarget(rootfs, m.destination) });
  return out;
}

/**
 * Where the generated /etc/hosts or /etc/resolv.conf goes: the image's own path for it, resolved in the rootfs. An image
 * whose /etc/hosts points under /proc, /sys or /dev gets none mounted (the link is left as the image made it).
 */
export async function resolveNetworkFileTarget(rootfs: string, target: string): Promise<string | undefined> {
  try {
    return await resolveMountTarget(rootfs, target);
  } catch (e) {
    if (e instanceof BuildError && e.code === "BAD_MOUNT_TARGET") return undefined;
    throw e;
  }
}
