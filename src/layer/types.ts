// One entry of a layer: what a tar header says, plus where the bytes come from.

export type EntryType = "file" | "directory" | "symlink" | "hardlink" | "char-device" | "block-device" | "fifo";

export interface LayerEntry {
  /** Relative to the rootfs, no leading "/" or "./", no trailing "/"; whiteouts use the OCI names (".wh.x", ".wh..wh..opq"). */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Regular files: byte count of `source`. */
  size?: number;
  /** Symlink target, or for hardlinks the path (relative to the rootfs) of the entry linked to. */
  linkname?: string;
  /** Regular files: absolute path on disk to read the bytes from. */
  source?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes (e.g. security.capability), values base64-free raw strings. */
  xattrs?: Record<string, string>;
}
