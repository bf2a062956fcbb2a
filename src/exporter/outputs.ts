// Dispatches a build's --output specs to the exporters: OCI layout, docker-archive, local rootfs dir, image store.
import { userNamespaceInfo } from "../util/user-namespace.js";
import { spawn } from "node:child_process";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Writable } from "node:stream";
import { createReadStream } from "node:fs";
import type { Engine } from "../engine.js";
import type { ProgressSink } from "../progress/events.js";
import type { Descriptor, Index, Manifest } from "../image/types.js";
import { isIndexMediaType } from "../image/media-types.js";
import { platformDirName } from "../image/platform.js";
import { familiarName, normalizeName } from "../image/reference.js";
import { exportOciLayout } from "./oci-layout.js";
import { exportDockerArchive } from "./docker-archive.js";
import { extractLayer } from "../layer/extract.js";
import { EnvironmentError, UsageError, throwIfAborted } from "../errors.js";
import { describeOutputDirError } from "../store/fs-error.js";
import { checkOutputDir, checkOutputFile, openOutputFile } from "../store/output-file.js";

export interface OutputSpec {
  type: "oci" | "docker" | "local" | "tar" | "image";
  /** Absolute path (file for tar outputs, directory otherwise). */
  dest: string;
  tar: boolean;
  /** oci and image (push) outputs: layer compression (buildx's compression=, compression-level=, force-compression=). */
  compression?: "gzip" | "zstd" | "uncompressed";
  compressionLevel?: number;
  forceCompression?: boolean;
  /** Names for the exported image; default: the build's tags. */
  names?: string[];
  /** oci outputs: annotations of the layout's index.json and of the image's descriptor in it (buildx's --annotation
   *  index:… / index-descriptor:… and manifest-descriptor:…). */
  annotations?: { index?: Record<string, string>; descriptor?: Record<string, string> };
  /** tar, docker and oci (tar) outputs: write into this stream (`dest=-`: standard output) instead of `dest`. */
  stream?: Writable;
}

export interface ExportableImage {
  manifest: Descriptor;
  /** Normalised names. */
  tags: string[];
}

/** How messages name an output's destination: the flag and type, e.g. "--output type=oci dest". */
export function outputLabel(out: OutputSpec): string {
  return `--output type=${out.type} dest`;
}

/** Fail early (before a build) when an output's dest cannot be written: a directory for a tar, a file for a dir. */
export async function checkOutput(out: OutputSpec): Promise<void> {
  if (out.type === "image" || out.stream) return;
  if (out.tar) await checkOutputFile(out.dest, { what: outputLabel(out) });
  else await checkOutputDir(out.dest, { what: outputLabel(out) });
}

/** Write one output; warnings go to `progress` (the build's sink; default the engine's). */
export async function exportOutputs(
  engine: Engine,
  image: ExportableImage,
  out: OutputSpec,
  signal?: AbortSignal,
  progress: ProgressSink = engine.progress,
): Promise<Descriptor | undefined> {
  const names = (out.names ?? image.tags).map((n) => normalizeName(n));
  switch (out.type) {
    case "image":
      for (const n of names) await engine.images.set(n, image.manifest);
      return image.manifest;
    case "oci": {
      const entry = {
        ...(names[0] ? { name: names[0] } : {}),
        manifest: image.manifest,
        ...(out.annotations?.descriptor ? { annotations: out.annotations.descriptor } : {}),
      };
      const r = await exportOciLayout(engine.content, [entry], out.dest, {
        ...(out.annotations?.index ? { indexAnnotations: out.annotations.index } : {}),
        tar: out.tar,
        compression: out.compression ?? "gzip",
        ...(out.compressionLevel !== undefined ? { compressionLevel: out.compressionLevel } : {}),
        ...(out.forceCompression ? { forceCompression: true } : {}),
        what: outputLabel(out),
        ...(signal ? { signal } : {}),
        ...(out.stream ? { stream: out.stream } : {}),
      });
      return r.descriptor;
    }
    case "docker":
      if (isIndexMediaType(image.manifest.mediaType))
        throw new UsageError("MULTI_PLATFORM_OUTPUT", `${outputLabel(out)}: a docker archive holds one platform, and this image has several`, {
          hint: "use -o type=oci for all platforms, or build one with --platform (e.g. --platform linux/amd64)",
        });
      await exportDockerArchive(engine.content, [{ names: names.map(familiarName), manifest: image.manifest }], out.dest, {
        what: outputLabel(out),
        ...(signal ? { signal } : {}),
        ...(out.stream ? { stream: out.stream } : {}),
      });
      return image.manifest;
    case "tar":
      await exportTar(engine, image, out, signal, progress);
      return undefined;
    case "local":
      try {
        await exportLocal(engine, image, out.dest, signal, progress);
      } catch (e) {
        throw describeOutputDirError(e, out.dest, outputLabel(out));
      }
      return image.manifest;
  }
}

/**
 * The image's filesystem, unpacked into `dest`: layers applied in order (whiteouts honoured), modes exactly as in the
 * image. Device nodes are left out (with a warning): recreated in a user's directory they would open the host's
 * devices to whoever can reach them (BuildKit's local exporter does not create them either). Symlinks that were in
 * `dest` before are never written through, so nothing lands outside it.
 */
/**
 * The image's filesystem as one tar file (buildx's -o type=tar): unpacked as for type=local (no device nodes, exact
 * modes), then packed by GNU tar with numeric owners and sorted names, written through the output-file rules.
 */
async function exportTar(engine: Engine, image: ExportableImage, out: OutputSpec, signal: AbortSignal | undefined, progress: ProgressSink): Promise<void> {
  const scratch = await engine.scratch("export-tar");
  try {
    const rootfs = join(scratch.path, "rootfs");
    await exportLocal(engine, image, rootfs, signal, progress);
    const names = (await readdir(rootfs)).sort();
    const file = await openOutputFile(out.dest, { what: outputLabel(out), ...(out.stream ? { stream: out.stream } : {}) });
    try {
      const tar = spawn(
        "tar",
        ["-C", rootfs, "-cf", "-", "--sort=name", "--numeric-owner", "--format=posix", "--pax-option=delete=atime,delete=ctime", "--", ...names],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stderr = "";
      tar.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number>((resolve, reject) => {
        tar.on("error", (e) =>
          reject(new EnvironmentError("NO_TAR", `--output type=tar needs GNU tar: ${e.message}`, { hint: "apt-get install -y tar", cause: e })),
        );
        tar.on("close", (code) => resolve(code ?? 1));
      });
      await (signal ? pipeline(tar.stdout, file.stream, { signal }) : pipeline(tar.stdout, file.stream));
      const code = await exited;
      if (code !== 0) throw new EnvironmentError("TAR_FAILED", `--output type=tar: tar exited with ${code}: ${stderr.trim()}`);
      await file.commit();
    } catch (e) {
      await file.abort();
      throw e;
    }
  } finally {
    await scratch.release();
  }
}

async function exportLocal(engine: Engine, image: ExportableImage, dest: string, signal: AbortSignal | undefined, progress: ProgressSink): Promise<void> {
  await mkdir(dest, { recursive: true });
  if (isIndexMediaType(image.manifest.mediaType)) {
    // Several platforms: one directory per platform (linux_amd64/, linux_arm64/), as BuildKit's local exporter does.
    const index = await engine.content.readJson<Index>(image.manifest.digest);
    for (const m of index.manifests) {
      if (!m.platform || isIndexMediaType(m.mediaType)) continue;
      await exportLocal(engine, { ...image, manifest: m }, join(dest, platformDirName(m.platform)), signal, progress);
    }
    return;
  }
  const manifest = await engine.content.readJson<Manifest>(image.manifest.digest);
  const skipped: string[] = [];
  const ownLinks = new Set<string>();
  for (const l of manifest.layers) {
    throwIfAborted(signal);
    await extractLayer(createReadStream(engine.content.path(l.digest)), dest, {
      ...(signal ? { signal } : {}),
      ownLinks,
      skipDevices: (e) => skipped.push(`/${e.path}`),
      // A rootless build writes the files as the user, as BuildKit's client does: never owned by subordinate ids
      // the user could not then change or remove.
      ...(userNamespaceInfo().rootless ? { root: false } : {}),
    });
  }
  if (skipped.length > 0) {
    const shown = skipped.slice(0, 5).join(", ") + (skipped.length > 5 ? ", ..." : "");
    progress.emit({
      kind: "warning",
      message: `--output type=local: skipped ${skipped.length} device node${skipped.length === 1 ? "" : "s"} (${shown}); device nodes are never created outside a container`,
    });
  }
}
