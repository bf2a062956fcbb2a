// The overlayfs snapshotter's half of a RUN: mount rootfs (lower) + scratch upper on a merged dir, and after the run
// read the upperdir into changes (whiteouts → deletes; below a directory that hides lower content, what a tree
// comparison with the lower finds).
import { chown, chmod, mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { diffSubtree, lstatOrUndefined, OPAQUE_MARKERS, sameDirMeta, sortedNames, type Change } from "./diff.js";
import { mountFuseOverlay, mountOverlay, unmount, type OverlayDirs } from "./mounts.js";
import type { CommandShell } from "../util/command-shell.js";

export type { OverlayDirs };
/** The kernel's overlayfs, or fuse-overlayfs where a user namespace may not mount it. */
export type OverlayDriver = "kernel" | "fuse";

/** Creates upper/work/merged under `scratch`; the upper root copies the rootfs root's owner and mode, which the merged root takes. */
export async function prepareOverlayDirs(rootfs: string, scratch: string): Promise<OverlayDirs> {
  const d: OverlayDirs = { lower: rootfs, upper: join(scratch, "upper"), work: join(scratch, "work"), merged: join(scratch, "merged") };
  for (const p of [d.upper, d.work, d.merged]) await mkdir(p, { recursive: true });
  const st = await stat(rootfs);
  await chown(d.upper, st.uid, st.gid);
  await chmod(d.upper, st.mode & 0o7777);
  return d;
}

/**
 * Mounts the overlay and returns its release (always call it, in a finally). mount(8) and umount(8) go through
 * `shell` when given; fuse-overlayfs, a daemon that would hold the shell's pipe, is always started directly.
 */
export async function mountOverlayDirs(d: OverlayDirs, driver: OverlayDriver = "kernel", shell?: CommandShell): Promise<() => Promise<void>> {
  await (driver === "fuse" ? mountFuseOverlay(d) : mountOverlay(d, shell));
  return () => unmount(d.merged, shell);
}

/**
 * Reads the upperdir into changes. Must run while the overlay is still mounted: a directory is opaque when some name of
 * its lower counterpart is missing from the merged view without a whiteout in the upper — the same answer as the
 * `trusted.overlay.opaque` xattr, found without an xattr tool, and also right for directories recreated inside one.
 */
export async function overlayChanges(d: OverlayDirs): Promise<Change[]> {
  const out: Change[] = [];
  await walkUpper(d, "", true, out);
  return out;
}

const WHITEOUT = ".wh.";

async function walkUpper(d: OverlayDirs, rel: string, lowerMayExist: boolean, out: Change[]): Promise<void> {
  for (const name of await sortedNames(join(d.upper, rel), rel)) {
    const p = rel === "" ? name : `${rel}/${name}`;
    const from = join(d.upper, p);
    const st = await lstatOrUndefined(from);
    if (!st) continue;
    // fuse-overlayfs marks the directories it creates opaque with both a .wh..opq device and a .wh..wh..opq file; an
    // opaque directory is found below by comparing with the merged view, as for the kernel's xattr.
    if (OPAQUE_MARKERS.has(name)) continue;
    if (st.isCharacterDevice() && st.rdev === 0n) {
      out.push({ kind: "delete", path: p });
      continue;
    }
    // fuse-overlayfs writes a .wh.NAME file where it cannot make a 0:0 device.
    if (name.startsWith(WHITEOUT) && st.isFile()) {
      out.push({ kind: "delete", path: rel === "" ? name.slice(WHITEOUT.length) : `${rel}/${name.slice(WHITEOUT.length)}` });
      continue;
    }
    if (!st.isDirectory()) {
      out.push({ kind: "upsert", path: p, from, stat: st });
      continue;
    }
    const lower = lowerMayExist ? await lstatOrUndefined(join(d.lower, p)) : undefined;
    const lowerIsDir = lower?.isDirectory() ?? false;
    let opaque = false;
    if (lowerIsDir) {
      const merged = new Set(await readdir(join(d.merged, p)));
      const upper = await sortedNames(from);
      const whited = new Set<string>();
      for (const n of upper) {
        const s = await lstatOrUndefined(join(from, n));
        if (OPAQUE_MARKERS.has(n)) continue;
        if (s?.isCharacterDevice() && s.rdev === 0n) whited.add(n);
        else if (n.startsWith(WHITEOUT) && s?.isFile()) whited.add(n.slice(WHITEOUT.length));
      }
      opaque = (await readdir(join(d.lower, p))).some((n) => !merged.has(n) && !whited.has(n));
    }
    // An opaque directory (rm -rf d && mkdir d) holds only upper content. BuildKit's overlayfs differ compares it with
    // the lower directory as continuity's double walk does, so the layer whites out each lower name that is gone
    // (explicit `.wh.<name>` entries, never `.wh..wh..opq`), and the copy snapshotter gives the same changes.
    const sub: Change[] = [];
    if (opaque) await diffSubtree(d.lower, d.upper, p, sub, OPAQUE_MARKERS);
    else await walkUpper(d, p, lowerIsDir, sub);
    // A directory copied up only for a time (a child made and removed, a touch) is not part of the layer (BuildKit's
    // sameDirent); one with changes below it always is.
    if (sub.length > 0 || !lower || !lowerIsDir || !sameDirMeta(lower, st)) out.push({ kind: "upsert", path: p, from, stat: st });
    out.push(...sub);
  }
}
