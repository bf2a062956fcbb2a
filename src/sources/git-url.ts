// What an ADD source that names a git repository asks for, by BuildKit's rules (gitutil.ParseGitRef and the query
// form of dockerfile 1.x): `URL#REF:SUBDIR`, or `URL?ref=…&subdir=…&keep-git-dir=…&checksum=…` (also tag=, branch=).
// Pure: no network, no git.
import { BuildError } from "../errors.js";

export interface GitUrl {
  /** What git fetches from (no fragment, no query). */
  url: string;
  /** Branch, tag or commit id; empty: the remote's default branch. */
  ref: string;
  subdir: string;
  /** From the query (`keep-git-dir=true`); the ADD flag also sets it. */
  keepGitDir?: boolean;
  /** From the query (`checksum=`): the commit id the ref must resolve to. */
  checksum?: string;
}

// Docker's urlPathWithFragmentSuffix (".git(?:#.+)?$"), with the dot meant literally.
const GIT_SUFFIX = /\.git$/;

/** True for what BuildKit treats as a git repository in ADD (git@, ssh://, git://, http(s)://…​.git, github.com/). */
export function isGitSource(s: string): boolean {
  const base = s.replace(/[#?].*$/s, "");
  if (/^https?:\/\//i.test(s)) return GIT_SUFFIX.test(base);
  return /^(git|ssh):\/\//i.test(s) || s.startsWith("git@") || s.startsWith("github.com/");
}

/** Split a git source into what git fetches and what the Dockerfile wants of it. */
export function parseGitUrl(spec: string): GitUrl {
  const hash = spec.indexOf("#");
  let rest = hash < 0 ? spec : spec.slice(0, hash);
  const fragment = hash < 0 ? "" : spec.slice(hash + 1);
  const q = rest.indexOf("?");
  const query = q < 0 ? undefined : new URLSearchParams(rest.slice(q + 1));
  if (q >= 0) rest = rest.slice(0, q);
  if (rest.startsWith("github.com/")) rest = `https://${rest}`;
  const colon = fragment.indexOf(":");
  let ref = colon < 0 ? fragment : fragment.slice(0, colon);
  let subdir = colon < 0 ? "" : fragment.slice(colon + 1);
  const out: GitUrl = { url: rest, ref, subdir };
  if (query) {
    if (fragment !== "") throw bad(spec, "uses both a #fragment and a ?query", "use one form: URL#REF:SUBDIR or URL?ref=REF&subdir=SUBDIR");
    for (const key of query.keys())
      if (!["ref", "tag", "branch", "subdir", "keep-git-dir", "checksum", "submodules"].includes(key))
        throw bad(spec, `has an unknown query parameter ${JSON.stringify(key)}`, "known are ref, tag, branch, subdir, keep-git-dir and checksum");
    ref = query.get("ref") ?? query.get("tag") ?? query.get("branch") ?? "";
    subdir = query.get("subdir") ?? "";
    out.ref = ref;
    out.subdir = subdir;
    const keep = query.get("keep-git-dir");
    if (keep !== null) {
      if (keep !== "true" && keep !== "false") throw bad(spec, `keep-git-dir=${keep} is not true or false`, "write keep-git-dir=true");
      out.keepGitDir = keep === "true";
    }
    const checksum = query.get("checksum");
    if (checksum !== null) out.checksum = checksum;
  }
  // Never an option to git (`--upload-pack=...`), never whitespace or control characters in a ref.
  if (ref.startsWith("-") || /[\s\0-\x1f\x7f~^?*[\\]/.test(ref) || ref.includes(".."))
    throw bad(
      spec,
      `${JSON.stringify(ref)} is not a valid branch, tag or commit`,
      "the fragment is #REF or #REF:SUBDIR, e.g. https://example.com/repo.git#main:app",
    );
  if (out.url.startsWith("-")) throw bad(spec, "is not a repository URL", "a git source is git@HOST:REPO, ssh://, git:// or https://…/REPO.git");
  return out;
}

function bad(spec: string, what: string, hint: string): BuildError {
  return new BuildError("BAD_SOURCE", `git source ${spec} ${what}`, { hint });
}
