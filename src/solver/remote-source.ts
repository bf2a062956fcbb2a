// ADD's remote sources, keyed before they run: an http(s) URL is keyed by its content digest (a conditional GET
// against the store's per-URL record, or the --checksum with no request at all), a git URL by the commit its ref
// resolves to. prepare() hands copy.ts the fetched file or checkout; it downloads only what planning did not.
import { chmod, mkdir, mkdtemp, utimes } from "node:fs/promises";
import { join, posix } from "node:path";
import { BuildError, TsbuildError, attachRange } from "../errors.js";
import type { SourceRange } from "../frontend/types.js";
import { fetchGit, type GitCheckout } from "../sources/git.js";
import { isGitSource, parseGitUrl } from "../sources/git-url.js";
import { downloadFile, type DownloadOptions } from "../sources/http.js";
import { readHttpRecord, writeHttpRecord } from "../sources/http-record.js";
import { proxyConfig } from "../sources/proxy.js";
import { storeLayout } from "../store/layout.js";
import type { BuildSession } from "./build-session.js";
import type { RemoteItem } from "./copy.js";
import { proxyEnv } from "./run-instruction.js";

export interface RemotePlan {
  /** What the cache key covers of this source (content digest, or commit). */
  part: string;
  /** The source in the instruction's key text: the URL is not part of the key, what it served is (as in BuildKit). */
  keyText: string;
  /** Fetch whatever planning did not, and say where it is. */
  prepare(): Promise<RemoteItem>;
}

export interface RemoteFlags {
  checksum?: string;
  unpack?: boolean;
  keepGitDir: boolean;
  range: SourceRange;
}

/** Is this ADD source fetched from the network (http(s) or git)? */
export function isRemoteSource(src: string): boolean {
  return /^https?:\/\//i.test(src) || isGitSource(src);
}

const SHA256 = /^sha256:[0-9a-f]{64}$/;
const COMMIT = /^[0-9a-f]{7,64}$/;

/** Key a remote ADD source (fetching what the key needs) in a scratch dir under the build's workdir. */
export async function planRemoteSource(run: BuildSession, src: string, flags: RemoteFlags): Promise<RemotePlan> {
  const { range } = flags;
  await mkdir(run.workdir, { recursive: true });
  const scratch = await mkdtemp(join(run.workdir, "add-"));
  try {
    return await (isGitSource(src) ? planGit(run, src, flags, scratch) : planHttp(run, src, flags, scratch));
  } catch (e) {
    throw e instanceof TsbuildError ? attachRange(e, range) : e;
  }
}

/** BuildKit's name for a downloaded file: the last component of the URL's path, else `__unnamed__`. */
export function httpFileName(url: URL): string {
  let p = url.pathname;
  try {
    p = decodeURIComponent(p);
  } catch {
    // A malformed escape: Go keeps the raw path too.
  }
  const base = posix.basename(p);
  return base === "" || base === "." || base === "/" || base === ".." ? "__unnamed__" : base;
}

async function planHttp(run: BuildSession, src: string, flags: RemoteFlags, scratch: string): Promise<RemotePlan> {
  let url: URL;
  try {
    url = new URL(src);
  } catch (e) {
    throw new BuildError("BAD_SOURCE", `ADD ${src} is not a valid URL`, { cause: e });
  }
  if (flags.checksum !== undefined && !SHA256.test(flags.checksum))
    throw new BuildError("BAD_FLAG_VALUE", `ADD --checksum=${flags.checksum}: expected sha256: and 64 lower-case hex digits`, {
      hint: "compute it with `sha256sum FILE` and write --checksum=sha256:<that>",
    });
  const name = httpFileName(url);
  const file = join(scratch, name);
  const layout = storeLayout(run.engine.root);
  const urlKey = run.hasher.key(`http ${url.href}`);
  // The proxy build args (either spelling) first, then tsbuild's own environment, which BuildKit's daemon uses.
  const base: DownloadOptions = { purpose: "source", label: `ADD ${url.href}`, signal: run.signal, proxy: proxyConfig(proxyVars(run), process.env) };
  let fetched: { mtime?: Date } | undefined;
  const finish = async (mtime: Date | undefined) => {
    // BuildKit's http source: 0600, mtime from Last-Modified when the server sent one.
    await chmod(file, 0o600);
    if (mtime) await utimes(file, mtime, mtime);
  };
  const item = (): RemoteItem => ({ kind: "file", name, path: file, unpack: flags.unpack === true });

  if (flags.checksum !== undefined) {
    const expected = flags.checksum as `sha256:${string}`;
    return {
      part: `http ${expected}`,
      keyText: `<${name} ${expected}>`,
      async prepare() {
        const got = await downloadFile(url, file, { ...base, expected }).catch(ranged(flags.range));
        if (got.status === 200) await finish(got.mtime);
        return item();
      },
    };
  }
  const record = await readHttpRecord(layout, urlKey, url.href);
  const got = await downloadFile(url, file, {
    ...base,
    ...(record
      ? { conditional: { ...(record.etag ? { etag: record.etag } : {}), ...(record.lastModified ? { lastModified: record.lastModified } : {}) } }
      : {}),
  });
  let digest: `sha256:${string}`;
  if (got.status === 200) {
    digest = got.digest;
    fetched = got.mtime ? { mtime: got.mtime } : {};
    await finish(got.mtime);
    await writeHttpRecord(layout, urlKey, {
      url: url.href,
      digest,
      ...(got.etag ? { etag: got.etag } : {}),
      ...(got.lastModified ? { lastModified: got.lastModified } : {}),
    });
  } else {
    digest = (record as { digest: `sha256:${string}` }).digest;
    run.progress.emit({ kind: "info", message: `ADD ${url.href}: not modified since the last download (${digest})` });
  }
  return {
    part: `http ${digest}`,
    keyText: `<${name} ${digest}>`,
    async prepare() {
      if (fetched) return item();
      // Not modified, but no cached step had it: download it again, and it must still be what the key says.
      const again = await downloadFile(url, file, base).catch(ranged(flags.range));
      if (again.status === 200 && again.digest !== digest)
        throw new BuildError("CONTEXT_CHANGED", `ADD ${url.href} changed during the build: it had digest ${digest}, now ${again.digest}`, {
          range: flags.range,
          hint: "build again",
        });
      if (again.status === 200) await finish(again.mtime);
      return item();
    },
  };
}

async function planGit(run: BuildSession, src: string, flags: RemoteFlags, scratch: string): Promise<RemotePlan> {
  const g = parseGitUrl(src);
  const keepGitDir = flags.keepGitDir || g.keepGitDir === true;
  const checksum = flags.checksum ?? g.checksum;
  if (checksum !== undefined && !COMMIT.test(checksum))
    throw new BuildError("BAD_FLAG_VALUE", `ADD --checksum=${checksum}: for a git source, expected a commit id (7 to 64 hex digits)`, {
      hint: "use the commit's id as `git rev-parse HEAD` prints it",
    });
  const label = `ADD ${src}`;
  // Proxy build args reach git as they reach RUN.
  const env: NodeJS.ProcessEnv = { ...process.env, ...proxyVars(run) };
  let checkout: Promise<GitCheckout> | undefined;
  const fetch = () =>
    (checkout ??= fetchGit({ spec: src, url: g.url, ref: g.ref, subdir: g.subdir, label }, scratch, { signal: run.signal, env, keepGitDir }).then((c) => {
      if (checksum !== undefined && !c.commit.startsWith(checksum.toLowerCase())) throw mismatch(c.commit);
      return c;
    }));
  const mismatch = (commit: string) =>
    new BuildError("DIGEST_MISMATCH", `${label}: the ref resolved to commit ${commit}, but --checksum wants ${checksum}`, {
      range: flags.range,
      hint: "the repository's ref moved or the checksum is wrong; pin the commit you trust",
    });
  // A full commit id is its own key: nothing is fetched unless the step misses.
  let commit: string;
  if (/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(g.ref)) {
    if (checksum !== undefined && !g.ref.startsWith(checksum.toLowerCase())) throw mismatch(g.ref);
    commit = g.ref;
  } else {
    commit = (await fetch()).commit;
  }
  const keyText = `<git ${commit}${g.subdir ? `:${g.subdir}` : ""}${keepGitDir ? " keep-git-dir" : ""}>`;
  return {
    // With .git kept the remote's URL is in the tree (its config), so it is part of what the step writes.
    part: `git ${commit} subdir=${g.subdir}${keepGitDir ? ` keep-git-dir ${g.url}` : ""}`,
    keyText,
    async prepare() {
      const c = await fetch().catch(ranged(flags.range));
      return { kind: "tree", dir: c.contextDir };
    },
  };
}

/** The proxy build args as variables, both spellings (run-instruction.ts proxyEnv); never part of a key or history. */
function proxyVars(run: BuildSession): Record<string, string> {
  return Object.fromEntries(proxyEnv(run.buildArgs).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
}

function ranged(range: SourceRange): (e: unknown) => never {
  return (e) => {
    throw e instanceof TsbuildError ? attachRange(e, range) : e;
  };
}
