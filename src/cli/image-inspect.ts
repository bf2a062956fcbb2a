// The `docker image inspect` object for an image in the store: what `tsbuild inspect --format TEMPLATE` (and
// `--format json`) evaluate, so docker's templates ({{.Id}}, {{.Config.Env}}, {{index .Config.Labels "k"}}) work.
// Maps are Go maps (Map), absent lists and maps are Go nils, as the template module expects. Pure.
import type { ImageConfig, Manifest } from "../image/types.js";
import { NilList, NilMap } from "./go-template.js";

export interface InspectInput {
  config: ImageConfig;
  manifest: Manifest;
  /** Familiar names of the image, e.g. busybox:local (names with a digest go to RepoDigests). */
  names: readonly string[];
  /** When the name asked for was last pointed at the image (ISO 8601). */
  lastTagTime?: string;
}

const list = <T>(v: readonly T[] | null | undefined): readonly T[] => (v ? [...v] : new NilList());
const map = <T>(v: Readonly<Record<string, T>> | undefined): Map<string, T> => (v ? new Map(Object.entries(v)) : new NilMap());

/** Docker's ImageInspect shape (API 1.43 field order); ids are config digests, sizes uncompressed bytes. */
export function dockerInspectObject(img: InspectInput): Record<string, unknown> {
  const c = img.config.config ?? {};
  return {
    Id: img.manifest.config.digest,
    RepoTags: list(img.names.filter((n) => !n.includes("@"))),
    RepoDigests: list(img.names.filter((n) => n.includes("@"))),
    Parent: "",
    Comment: "",
    Created: img.config.created ?? "0001-01-01T00:00:00Z",
    DockerVersion: "",
    Author: img.config.author ?? "",
    Config: {
      Hostname: "",
      Domainname: "",
      User: c.User ?? "",
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      ExposedPorts: map(c.ExposedPorts),
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: list(c.Env),
      Cmd: list(c.Cmd),
      Healthcheck: c.Healthcheck ?? null,
      ArgsEscaped: c.ArgsEscaped ?? false,
      Image: "",
      Volumes: map(c.Volumes),
      WorkingDir: c.WorkingDir ?? "",
      Entrypoint: list(c.Entrypoint),
      OnBuild: list(c.OnBuild),
      Labels: map(c.Labels),
      StopSignal: c.StopSignal ?? "",
      Shell: list(c.Shell),
    },
    Architecture: img.config.architecture,
    ...(img.config.variant ? { Variant: img.config.variant } : {}),
    Os: img.config.os,
    Size: img.manifest.layers.reduce((n, l) => n + l.size, 0),
    RootFS: { Type: "layers", Layers: list(img.config.rootfs?.diff_ids) },
    Metadata: { LastTagTime: img.lastTagTime ?? "0001-01-01T00:00:00Z" },
  };
}
