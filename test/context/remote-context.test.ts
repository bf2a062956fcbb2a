// Remote build contexts through the real CLI: git over git:// (git daemon) and smart http (git http-backend), with
// branches, tags, commit ids and subdirectories, tarball and Dockerfile URLs, and every failure with its code.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { freePort, startGitDaemon, startHttpServer, type Server } from "../helpers/git-servers.js";
import { compress, tarBytes } from "../helpers/tar-bytes.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let daemon: Server;
let web: Server;
let n = 0;
const sha: Record<string, string> = {};
const r = (args: string[]) => tsbuild([...args, "--root", root, "--progress", "plain"], { cwd: dir.path });

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", ...args], { cwd });
  return stdout.trim();
}

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  const work = join(dir.path, "work");
  const repos = join(dir.path, "repos");
  const files = join(dir.path, "files");
  await mkdir(work);
  await mkdir(repos);
  await mkdir(files);
  await git(work, "init", "-q");
  await writeFile(join(work, "Dockerfile"), "FROM scratch\nCOPY . /ctx/\n");
  await writeFile(join(work, "msg.txt"), "one\n");
  await git(work, "add", "-A");
  await git(work, "commit", "-qm", "one");
  await git(work, "tag", "v1");
  sha.one = await git(work, "rev-parse", "HEAD");
  await git(work, "checkout", "-qb", "feature");
  await writeFile(join(work, "msg.txt"), "feature\n");
  await git(work, "commit", "-qam", "feature");
  await git(work, "checkout", "-q", "main");
  await writeFile(join(work, "msg.txt"), "two\n");
  await mkdir(join(work, "sub"));
  await writeFile(join(work, "sub/Dockerfile"), "FROM scratch\nCOPY inner.txt /\n");
  await writeFile(join(work, "sub/inner.txt"), "inside sub\n");
  await symlink("..", join(work, "sub/up"));
  await symlink("/etc", join(work, "etc-link"));
  await writeFile(join(work, "etc-link-file"), "x\n");
  await git(work, "add", "-A");
  await git(work, "commit", "-qm", "two");
  sha.two = await git(work, "rev-parse", "HEAD");
  await git(repos, "clone", "-q", "--bare", work, "repo.git");

  await writeFile(
    join(files, "ctx.tar.gz"),
    await compress(
      await tarBytes([
        { name: "Dockerfile", body: "FROM scratch\nCOPY t.txt /\n" },
        { name: "t.txt", body: "from a tarball\n" },
      ]),
      "gzip",
    ),
  );
  await writeFile(join(files, "Dockerfile.remote"), "FROM scratch\nLABEL from=url\n");
  daemon = await startGitDaemon(repos);
  web = await startHttpServer(repos, files);
});
afterAll(async () => {
  await daemon?.close();
  await web?.close();
  await dir?.cleanup();
});

async function built(context: string, extra: string[] = []) {
  const out = join(dir.path, `out-${++n}`);
  const meta = join(dir.path, `meta-${n}.json`);
  const res = await r(["build", "-o", `type=local,dest=${out}`, "--metadata-file", meta, ...extra, context]);
  const metadata = res.code === 0 ? JSON.parse(await readFile(meta, "utf8")) : undefined;
  return { res, out, metadata };
}

async function expectNoLeftovers(): Promise<void> {
  const tmp = existsSync(join(root, "tmp")) ? await readdir(join(root, "tmp")) : [];
  expect(tmp.filter((f) => f.startsWith("context-"))).toEqual([]);
}

const gitUrl = () => `git://127.0.0.1:${daemon.port}/repo.git`;
const httpGit = () => `http://127.0.0.1:${web.port}/git/repo.git`;

describe("git contexts", () => {
  it("clones the default branch over git://, prints and records the commit, and leaves .git out", async () => {
    const { res, out, metadata } = await built(gitUrl());
    expect(res.code, res.stderr).toBe(0);
    expect(await readFile(join(out, "ctx/msg.txt"), "utf8")).toBe("two\n");
    expect(existsSync(join(out, "ctx/.git"))).toBe(false);
    expect(res.stderr).toContain(`commit ${sha.two}`);
    expect(metadata["tsbuild.context"]).toEqual({ type: "git", url: gitUrl(), ref: "", subdir: "", commit: sha.two });
    await expectNoLeftovers();
  });

  it("takes a tag, a branch, a full and a short commit id", async () => {
    for (const [ref, msg, commit] of [
      ["v1", "one", sha.one],
      ["feature", "feature", undefined],
      [sha.one, "one", sha.one],
      [(sha.one as string).slice(0, 10), "one", sha.one],
    ] as const) {
      const { res, out, metadata } = await built(`${gitUrl()}#${ref}`);
      expect(res.code, res.stderr).toBe(0);
      expect(await readFile(join(out, "ctx/msg.txt"), "utf8")).toBe(`${msg}\n`);
      if (commit) expect(metadata["tsbuild.context"].commit).toBe(commit);
    }
  });

  it("uses #REF:SUBDIR over smart http, and the Dockerfile there", async () => {
    const { res, out, metadata } = await built(`${httpGit()}#main:sub`);
    expect(res.code, res.stderr).toBe(0);
    expect(await readFile(join(out, "inner.txt"), "utf8")).toBe("inside sub\n");
    expect(metadata["tsbuild.context"]).toMatchObject({ type: "git", ref: "main", subdir: "sub", commit: sha.two });
  });

  it("hits the cache when the commit is the same", async () => {
    const first = await built(`${httpGit()}#main`);
    const again = await built(`${gitUrl()}#${sha.two}`);
    expect(first.res.code, first.res.stderr).toBe(0);
    expect(again.res.code, again.res.stderr).toBe(0);
    expect(again.metadata["containerimage.config.digest"]).toBe(first.metadata["containerimage.config.digest"]);
    expect(again.metadata["tsbuild.cache"].misses).toBe(0);
  });

  it("refuses a subdirectory that leaves the repository or is not there", async () => {
    for (const [sub, why] of [
      ["sub/up/..", "must be a path inside the repository"],
      ["../x", "must be a path inside the repository"],
      ["sub/up/etc-link", "leads out of the repository through a symlink"],
      ["nope", `does not exist at commit ${sha.two}`],
      ["msg.txt", "is not a directory"],
    ] as const) {
      const { res } = await built(`${gitUrl()}#main:${sub}`);
      expect(res.code, sub).toBe(1);
      expect(res.stderr).toContain(`subdirectory ${JSON.stringify(sub)} ${why}`);
      expect(res.stderr).toContain("[BAD_SUBDIR]");
    }
    await expectNoLeftovers();
  });

  it("names an unknown ref, a missing repository and a dead server, never as a bug", async () => {
    const cases: [string, string, RegExp][] = [
      [`${gitUrl()}#no-such-branch`, "GIT_REF_NOT_FOUND", /"no-such-branch" is no branch, tag or commit/],
      [`${gitUrl()}#deadbeefdeadbeef`, "GIT_REF_NOT_FOUND", /"deadbeefdeadbeef" is no branch, tag or commit/],
      [`git://127.0.0.1:${daemon.port}/missing.git`, "GIT_REPO_NOT_FOUND", /there is no git repository at this URL/],
      [`http://127.0.0.1:${web.port}/git/missing.git`, "GIT_REPO_NOT_FOUND", /there is no git repository at this URL/],
      [`git://127.0.0.1:${await freePort()}/repo.git`, "CONNECTION_REFUSED", /cannot connect to the git server/],
    ];
    for (const [url, code, message] of cases) {
      const { res } = await built(url);
      expect(res.code, url).toBe(1);
      expect(res.stderr).toMatch(message);
      expect(res.stderr).toContain(`[${code}]`);
      expect(res.stderr).toMatch(/^hint: /m);
      expect(res.stderr).not.toContain("this is a bug");
    }
    await expectNoLeftovers();
  });
});

describe("URL contexts", () => {
  it("downloads and unpacks a tarball, also through a redirect", async () => {
    for (const path of ["/ctx.tar.gz", "/redirect/ctx.tar.gz"]) {
      const { res, out, metadata } = await built(`http://127.0.0.1:${web.port}${path}`);
      expect(res.code, res.stderr).toBe(0);
      expect(await readFile(join(out, "t.txt"), "utf8")).toBe("from a tarball\n");
      expect(metadata["tsbuild.context"]).toMatchObject({ type: "http", format: "tar", digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    }
    await expectNoLeftovers();
  });

  it("builds a URL that serves a Dockerfile", async () => {
    const res = await r(["build", "-t", "from-url", `http://127.0.0.1:${web.port}/Dockerfile.remote`]);
    expect(res.code, res.stderr).toBe(0);
    const info = JSON.parse((await tsbuild(["inspect", "from-url", "--root", root])).stdout)[0];
    expect(info.Config.config.Labels).toEqual({ from: "url" });
  });

  it("names a 404, a refused connection and a scheme it cannot fetch", async () => {
    const cases: [string, string, RegExp][] = [
      [`http://127.0.0.1:${web.port}/missing.tar`, "CONTEXT_NOT_FOUND", /the server answered 404/],
      [`http://127.0.0.1:${await freePort()}/ctx.tar`, "CONNECTION_REFUSED", /connection refused/],
      ["ftp://127.0.0.1/ctx.tar", "BAD_CONTEXT", /tsbuild cannot fetch ftp:\/\/ URLs/],
    ];
    for (const [url, code, message] of cases) {
      const res = await r(["build", url]);
      expect(res.code, url).toBe(1);
      expect(res.stderr).toMatch(message);
      expect(res.stderr).toContain(`[${code}]`);
      expect(res.stderr).toMatch(/^hint: /m);
      expect(res.stderr).not.toContain("this is a bug");
    }
    await expectNoLeftovers();
  });
});
