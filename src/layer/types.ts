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
  /** Regular files read straight from a source the writer does not own (a build context): the bytes they must have. */
  check?: ContentCheck;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes (e.g. security.capability), values base64-free raw strings. */
  xattrs?: Record<string, string>;
}

/**
 * What a file entry's bytes must hash to, checked in the same read that writes them into the layer: a COPY from the
 * build context writes the layer from the context files themselves, and must write exactly what its cache key saw.
 */
export interface ContentCheck {
  /** The content hash of the bytes (in one piece, and incrementally: both give the same digest). */
  hasher: { bytes(data: Uint8Array): string; stream(): { update(chunk: Uint8Array): void; digest(): string } };
  /** The expected hash. */
  content: string;
  /** The error to fail with when the file is not those bytes any more (changed, grown, replaced, gone). */
  mismatch(): Error;
}
