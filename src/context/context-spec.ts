// What the CONTEXT argument of `tsbuild build` names, by docker's rules (docker/cli urlutil, buildx): `-` is standard
// input, a git URL is cloned, another http(s) URL is downloaded, anything else is a local directory. Pure.
import { BuildError } from "../errors.js";

export type ContextSpec =
  | { kind: "dir"; path: string }
  | { kind: "stdin" }
  /** `url` is what git clones; `ref` and `subdir` come from the `#ref:subdir` fragment (empty: default branch, root). */
  | { kind: "git"; spec: string; url: string; ref: string; subdir: string }
  | { kind: "http"; spec: string; url: URL };

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;
// Docker's urlPathWithFragmentSuffix (".git(?:#.+)?$"), with the dot meant literally.
const GIT_SUFFIX = /\.git(?:#.*)?$/;

/** True for what docker treats as a git repository URL. */
export function isGitUrl(s: string): boolean {
  if (/^https?:\/\//i.test(s) && GIT_SUFFIX.test(s)) return true;
  return /^(git|ssh):\/\//i.test(s) || s.startsWith("git@") || s.startsWith("github.com/");
}

/** Classify a CONTEXT argument; a URL of a scheme tsbuild cannot fetch is BAD_CONTEXT. */
export function parseContextSpec(spec: string): ContextSpec {
  if (spec === "-") return { kind: "stdin" };
  if (isGitUrl(spec)) {
    const hash = spec.indexOf("#");
    let url = hash < 0 ? spec : spec.slice(0, hash);
    const fragment = hash < 0 ? "" : spec.slice(hash + 1);
    const colon = fragment.indexOf(":");
    const ref = colon < 0 ? fragment : fragment.slice(0, colon);
    const subdir = colon < 0 ? "" : fragment.slice(colon + 1);
    if (url.startsWith("github.com/")) url = `https://${url}`;
    // Never an option to git (`--upload-pack=...`), never whitespace or control characters in a ref.
    if (ref.startsWith("-") || /[\s\0-\x1f\x7f~^?*[\\]/.test(ref) || ref.includes(".."))
      throw new BuildError("BAD_CONTEXT", `git context ${spec}: ${JSON.stringify(ref)} is not a valid branch, tag or commit`, {
        hint: "the fragment is #REF or #REF:SUBDIR, e.g. https://example.com/repo.git#main:app",
      });
    return { kind: "git", spec, url, ref, subdir };
  }
  const scheme = SCHEME.exec(spec)?.[1]?.toLowerCase();
  if (scheme === "http" || scheme === "https") {
    let url: URL;
    try {
      url = new URL(spec);
    } catch (e) {
      throw new BuildError("BAD_CONTEXT", `build context ${spec} is not a valid URL`, { cause: e });
    }
    return { kind: "http", spec, url };
  }
  if (scheme !== undefined)
    throw new BuildError("BAD_CONTEXT", `build context ${spec}: tsbuild cannot fetch ${scheme}:// URLs`, {
      hint: "a context is a directory, `-` (a tar or Dockerfile on stdin), a git URL (https://…/repo.git, git@host:repo, ssh://, git://) or an http(s) URL of a tar",
    });
  return { kind: "dir", path: spec };
}
