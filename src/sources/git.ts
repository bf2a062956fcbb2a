// The one git fetcher (build contexts and ADD of a git URL): a repository fetched with Debian's `git` into a work
// directory (shallow for a branch, tag or the default branch; every branch and tag for a commit id), the ref resolved
// to a commit, and `#ref:SUBDIR` found inside the checkout without leaving it. The git directory stays outside the
// checkout, so `.git` is never part of the tree unless `keepGitDir` moves it in (BuildKit's keep-git-dir).
import { execFile } from "node:child_process";
import { lstat, mkdir, realpath, rename } from "node:fs/promises";
import { join, sep } from "node:path";
import { AbortError, BuildError, EnvironmentError, type ErrorCode } from "../errors.js";

export interface GitSource {
  /** What the user typed (for messages). */
  spec: string;
  /** What git fetches from. */
  url: string;
  /** Branch, tag or commit id; empty: the remote's default branch. */
  ref: string;
  /** The directory inside the repository; empty: its root. */
  subdir: string;
  /** How messages name the source; default `git context SPEC`. */
  label?: string;
}

export interface GitFetchOptions {
  signal?: AbortSignal;
  /** The environment git runs in (credentials helpers, proxies, GIT_SSH_COMMAND); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Keep the repository as `.git` at the root of the checkout (ADD --keep-git-dir=true). */
  keepGitDir?: boolean;
}

export interface GitCheckout {
  /** The wanted directory (the checkout, or SUBDIR inside it). */
  contextDir: string;
  /** The full commit id the ref resolved to. */
  commit: string;
  /** The repository has submodules (.gitmodules), which are not fetched. */
  hasSubmodules: boolean;
}

const COMMIT_ID = /^[0-9a-f]{7,40}$/i;

interface GitRun {
  (args: string[]): Promise<string>;
}

/** Fetch `src` into the empty directory `workDir` (which receives `git/` and `tree/`) and check it out. */
export async function fetchGit(src: GitSource, workDir: string, opts: GitFetchOptions = {}): Promise<GitCheckout> {
  const gitDir = join(workDir, "git");
  const tree = join(workDir, "tree");
  await mkdir(tree);
  const baseEnv = opts.env ?? process.env;
  const env: NodeJS.ProcessEnv = {
    ...baseEnv,
    GIT_DIR: gitDir,
    GIT_WORK_TREE: tree,
    // Never wait for a password on a terminal nobody watches; messages in English, so they can be classified.
    GIT_TERMINAL_PROMPT: "0",
    GIT_SSH_COMMAND: baseEnv["GIT_SSH_COMMAND"] ?? "ssh -o BatchMode=yes",
    LC_ALL: "C",
    LANGUAGE: "C",
  };
  const git: GitRun = (args) => runGit(args, tree, env, src, opts.signal);

  await git(["init", "-q"]);
  await git(["remote", "add", "origin", src.url]);
  let commit: string;
  if (src.ref !== "" && COMMIT_ID.test(src.ref)) {
    // A commit id cannot be fetched shallowly from every server: fetch all branches and tags, then look it up.
    await git(["fetch", "-q", "--no-tags", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]);
    commit =
      (await resolveCommit(git, `${src.ref}^{commit}`)) ??
      (await resolveCommit(git, `refs/remotes/origin/${src.ref}^{commit}`)) ??
      (src.ref.length === 40 ? await fetchOne(git, src.ref) : undefined) ??
      throwRefNotFound(src);
  } else {
    await git(["fetch", "-q", "--depth", "1", "--no-tags", "origin", src.ref === "" ? "HEAD" : src.ref]);
    commit = (await resolveCommit(git, "FETCH_HEAD^{commit}")) ?? throwRefNotFound(src);
  }
  await git(["-c", "advice.detachedHead=false", "checkout", "-q", "-f", "--detach", commit]);
  const hasSubmodules = await lstat(join(tree, ".gitmodules")).then(
    (st) => st.isFile(),
    () => false,
  );
  if (opts.keepGitDir) {
    // A plain repository at the root of the tree, its HEAD detached at the commit (as BuildKit leaves it).
    await rename(gitDir, join(tree, ".git"));
  }
  return { contextDir: await subdirOf(tree, src, commit), commit, hasSubmodules };
}

async function resolveCommit(git: GitRun, rev: string): Promise<string | undefined> {
  try {
    const out = (await git(["rev-parse", "-q", "--verify", rev])).trim();
    return /^[0-9a-f]{40,64}$/.test(out) ? out : undefined;
  } catch {
    return undefined;
  }
}

/** A full commit id no branch or tag reaches: some servers hand it out on request (uploadpack.allowAnySHA1InWant). */
async function fetchOne(git: GitRun, sha: string): Promise<string | undefined> {
  try {
    await git(["fetch", "-q", "--depth", "1", "origin", sha]);
  } catch {
    return undefined;
  }
  return resolveCommit(git, "FETCH_HEAD^{commit}");
}

function labelOf(src: GitSource): string {
  return src.label ?? `git context ${src.spec}`;
}

function throwRefNotFound(src: GitSource): never {
  throw new BuildError("GIT_REF_NOT_FOUND", `${labelOf(src)}: ${JSON.stringify(src.ref || "HEAD")} is no branch, tag or commit of ${src.url}`, {
    hint: `list what the repository has with \`git ls-remote ${src.url}\``,
  });
}

/** `#ref:SUBDIR` inside the checkout: no `..`, no absolute path, and no symlink leading out of the repository. */
async function subdirOf(tree: string, src: GitSource, commit: string): Promise<string> {
  if (src.subdir === "" || src.subdir === "." || src.subdir === "/") return tree;
  const bad = (why: string) =>
    new BuildError("BAD_SUBDIR", `${labelOf(src)}: subdirectory ${JSON.stringify(src.subdir)} ${why}`, {
      hint: "the part after `:` in #REF:SUBDIR is a directory of the repository, relative to its root",
    });
  const parts = src.subdir.split("/").filter((p) => p !== "" && p !== ".");
  if (src.subdir.startsWith("/") || parts.includes("..")) throw bad("must be a path inside the repository (no leading / and no ..)");
  const root = await realpath(tree);
  let real: string;
  try {
    real = await realpath(join(tree, ...parts));
  } catch {
    throw bad(`does not exist at commit ${commit}`);
  }
  if (real !== root && !real.startsWith(root + sep)) throw bad("leads out of the repository through a symlink");
  if (!(await lstat(real)).isDirectory()) throw bad(`is not a directory at commit ${commit}`);
  return real;
}

function runGit(args: string[], cwd: string, env: NodeJS.ProcessEnv, src: GitSource, signal: AbortSignal | undefined): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    execFile("git", args, { cwd, env, maxBuffer: 16 * 1024 * 1024, ...(signal ? { signal } : {}) }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if (signal?.aborted) return reject(new AbortError());
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && (err as NodeJS.ErrnoException).syscall?.startsWith("spawn"))
        return reject(
          new EnvironmentError("TOOL_MISSING", `a git build context needs the \`git\` command, which is not installed`, {
            hint: "apt-get install -y git",
            cause: err,
          }),
        );
      reject(gitError(String(stderr), src, args[0] ?? "git", err));
    });
  });
}

/** git's own words, classified: what went wrong and what to do. */
export function gitError(stderr: string, src: GitSource, command: string, cause?: unknown): BuildError {
  const text = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("hint:"))
    .slice(-4)
    .join("; ");
  const said = text === "" ? `git ${command} failed` : text;
  const make = (code: ErrorCode, what: string, hint: string) =>
    new BuildError(code, `${labelOf(src)}: ${what} (git: ${said})`, { hint, ...(cause !== undefined ? { cause } : {}) });
  if (/could not resolve host|name or service not known|temporary failure in name resolution/i.test(stderr))
    return make("HOST_NOT_FOUND", "the host is not known", "check the host name in the URL, and the machine's DNS");
  if (/connection refused|couldn't connect|could not connect|failed to connect|unable to connect|connection timed out/i.test(stderr))
    return make("CONNECTION_REFUSED", "cannot connect to the git server", "is the server running, and is the host:port in the URL right?");
  if (/couldn't find remote ref|not our ref|no such ref|invalid refspec|bad revision/i.test(stderr))
    return make(
      "GIT_REF_NOT_FOUND",
      `${JSON.stringify(src.ref || "HEAD")} is no branch, tag or commit of the repository`,
      `list them with \`git ls-remote ${src.url}\``,
    );
  if (/authentication failed|could not read username|could not read password|permission denied \(publickey|terminal prompts disabled/i.test(stderr))
    return make("AUTH_FAILED", "the git server wants credentials", "set up a git credential helper or an ssh key for this host (tsbuild never prompts)");
  if (/not found|does not appear to be a git repository|repository not exported|does not exist|returned error: 404|no such file or directory/i.test(stderr))
    return make("GIT_REPO_NOT_FOUND", "there is no git repository at this URL", "check the URL; `git ls-remote URL` should list its branches");
  if (/ssl|tls|certificate/i.test(stderr))
    return make("TLS_ERROR", "the TLS connection to the git server failed", "check the server's certificate, or use another URL");
  return make("GIT_FAILED", `git ${command} failed`, "run the same git command by hand to see more (GIT_TRACE=1 shows every step)");
}
