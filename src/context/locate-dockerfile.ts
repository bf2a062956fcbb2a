// Where the Dockerfile is and how messages name it: `-f PATH`, else CONTEXT/Dockerfile, both relative to the
// caller's cwd. One answer for the CLI and the library's build() (which passes process.cwd()).
import { join, relative, resolve } from "node:path";
import { BuildError } from "../errors.js";
import { MAX_DOCKERFILE_BYTES, readRegularFileIfExists } from "../fs/read-input.js";

export interface DockerfileLocation {
  /** Absolute path. */
  path: string;
  /** How messages name it: relative to the cwd when inside it, else absolute. */
  display: string;
}

export function locateDockerfile(cwd: string, fileFlag: string | undefined, contextDir: string | undefined): DockerfileLocation {
  const path = resolve(cwd, fileFlag ?? join(contextDir ?? ".", "Dockerfile"));
  const rel = relative(cwd, path);
  return { path, display: rel === "" || rel.startsWith("..") ? path : rel };
}

/** The Dockerfile's text: a regular file of at most MAX_DOCKERFILE_BYTES (a FIFO or directory is an error, never a hang). */
export async function readDockerfile(loc: DockerfileLocation, signal?: AbortSignal): Promise<string> {
  const text = await readRegularFileIfExists(loc.path, {
    maxBytes: MAX_DOCKERFILE_BYTES,
    what: "Dockerfile",
    display: loc.display,
    ...(signal ? { signal } : {}),
  });
  if (text === undefined)
    throw new BuildError("DOCKERFILE_NOT_FOUND", `cannot read Dockerfile ${loc.display}`, { hint: "use -f PATH to pick another Dockerfile" });
  return text;
}
