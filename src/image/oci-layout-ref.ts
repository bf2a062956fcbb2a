// `oci-layout://PATH[:TAG][@DIGEST]` (buildx's --build-context value for an OCI image layout directory): split as
// buildx's parseOCILayoutPath does — a trailing @digest, then a trailing :tag, else the tag "latest" — and written
// back as one string, which the plan carries as the image name of the context (solver/base-image.ts reads it).
export const OCI_LAYOUT_SCHEME = "oci-layout://";

export interface OciLayoutRef {
  /** The layout directory (absolute once the CLI resolved it). */
  path: string;
  /** Looked up in index.json when no digest is given (buildx's default "latest"). */
  tag: string;
  /** Pins the manifest or index; need not be listed in index.json, only present in blobs/. */
  digest?: string;
}

const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const TAG = /^[\w][\w.-]{0,127}$/;

export function isOciLayoutRef(name: string): boolean {
  return name.toLowerCase().startsWith(OCI_LAYOUT_SCHEME);
}

/** Splits `oci-layout://…` (or the part after the scheme); an `@` or `:` that does not start a digest or tag stays in the path. */
export function parseOciLayoutRef(value: string): OciLayoutRef {
  let path = isOciLayoutRef(value) ? value.slice(OCI_LAYOUT_SCHEME.length) : value;
  let digest: string | undefined;
  let tag = "latest";
  const at = path.lastIndexOf("@");
  if (at >= 0 && DIGEST.test(path.slice(at + 1))) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
  }
  const colon = path.lastIndexOf(":");
  if (colon >= 0 && !path.slice(colon + 1).includes("/") && TAG.test(path.slice(colon + 1))) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  return { path, tag, ...(digest !== undefined ? { digest } : {}) };
}

export function formatOciLayoutRef(ref: OciLayoutRef): string {
  return `${OCI_LAYOUT_SCHEME}${ref.path}:${ref.tag}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}
