// ADD of remote sources through the real CLI: http(s) URLs (a node server on 127.0.0.1 with a request log) and git
// repositories (git daemon): file name, 0600 mode, Last-Modified mtime, --checksum, --chown/--chmod, conditional
// re-fetches (304), the content digest as the cache key, retries on a dropped connection, --unpack, and git refs,
// subdirs, --keep-git-dir and commit pins.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decompressStream } from "../../src/layer/compression.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { startGitDaemon, type Server } from "../helpers/git-servers.js";
import { compress, tarBytes } from "../helpers/tar-bytes.js";
import { exec } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let n = 0;
const LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT";

/** The test's web server: files by path, an ETag per content, a log of every request with its answer. */
interface Web {
  port: number;
  files: Map<string, Buffer>;
  log: { path: string; status: number; inm?: string }[];
  /** Paths whose next request is cut off halfway through the body. */
  drop: Set<string>;
  close(): Promise<void>;
}

async function startWeb(port = 0, files = new Map<string, Buffer>()): Promise<Web> {
  const web = { files, log: [], drop: new Set<string>() } as unknown as Web;
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const body = web.files.get(path);
    const inm = req.headers["if-none-match"];
    const answer = (status: number) => web.log.push({ path, status, ...(typeof inm === "string" ? { inm } : {}) });
    if (!body) {
      answer(404);
      res.writeHead(404).end("no\n");
      return;
    }
    const etag = `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`;
    if (inm === etag) {
      answer(304);
      res.writeHead(304, { etag, "last-modified": LAST_MODIFIED }).end();
      return;
    }
    answer(200);
    res.writeHead(200, { etag, "last-modified": LAST_MODIFIED, "content-length": body.length });
    if (web.drop.delete(path)) {
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  web.port = (server.address() as AddressInfo).port;
  web.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return web;
}

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  body?: string;
}

/** Every entry of the image's layers (later layers win), with file bodies, read from an OCI layout directory. */
async function imageFiles(layout: string): Promise<Map<string, Entry>> {
  const blob = (d: string) => join(layout, "blobs", ...d.split(":"));
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests.at(-1)!.digest), "utf8")) as { layers: { digest: string }[] };
  const out = new Map<string, Entry>();
  for (const l of manifest.layers) {
    const ex = tar.extract();
    (await decompressStream(createReadStream(blob(l.digest)))).stream.pipe(ex);
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      const h = e.header;
      out.set(h.name.replace(/^\.?\//, "").replace(/\/$/, ""), {
        type: h.type ?? "file",
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        ...(h.type === "file" ? { body: Buffer.concat(chunks).toString() } : {}),
      });
    }
  }
  return out;
}

async function build(dockerfile: string, ctxFiles: Record<string, Buffer> = {}) {
  const ctx = join(dir.path, `ctx-${++n}`);
  await mkdir(ctx);
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  await writeFile(join(ctx, "local.txt"), "local\n");
  for (const [name, body] of Object.entries(ctxFiles)) await writeFile(join(ctx, name), body);
  const layout = join(dir.path, `oci-${n}`);
  const meta = join(dir.path, `meta-${n}.json`);
  const res = await tsbuild(["build", "--progress", "plain", "--metadata-file", meta, "-o", `type=oci,dest=${layout},tar=false`, ctx, "--root", root]);
  const ok = res.code === 0;
  return {
    res,
    files: ok ? await imageFiles(layout) : new Map<string, Entry>(),
    metadata: ok ? (JSON.parse(await readFile(meta, "utf8")) as Record<string, { misses: number; hits: number }>) : {},
  };
}

const sha256 = (s: string | Buffer) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

beforeAll(async () => {
  dir = await tempDir("tsbuild-add-remote-");
  root = join(dir.path, "store");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("ADD of an http URL", () => {
  let web: Web;
  beforeAll(async () => {
    web = await startWeb();
    web.files.set("/files/hello.txt", Buffer.from("hello over http\n"));
    web.files.set("/files/other.txt", Buffer.from("other\n"));
    web.files.set("/files/big.bin", Buffer.alloc(300_000, 7));
    web.files.set("/files/a.tar.gz", await compress(await tarBytes([{ name: "inside.txt", body: "from the tar\n" }]), "gzip"));
  });
  afterAll(async () => {
    await web?.close();
  });
  const u = (p: string) => `http://127.0.0.1:${web.port}${p}`;

  it("names the file after the URL path, 0600 root, mtime from Last-Modified; dest/ takes the name, a plain dest is the file", async () => {
    const { res, files } = await build(`FROM scratch\nADD ${u("/files/hello.txt")} /in/\nADD ${u("/files/hello.txt?x=1")} /renamed.txt\n`);
    expect(res.code, res.stderr).toBe(0);
    const f = files.get("in/hello.txt");
    expect(f).toMatchObject({ type: "file", mode: 0o600, uid: 0, gid: 0, body: "hello over http\n" });
    expect(f?.mtime).toBe(Date.parse(LAST_MODIFIED) / 1000);
    expect(files.get("renamed.txt")?.body).toBe("hello over http\n");
  });

  it("applies --chown and --chmod", async () => {
    const { res, files } = await build(`FROM scratch\nADD --chown=1000:1001 --chmod=755 ${u("/files/other.txt")} /o/\n`);
    expect(res.code, res.stderr).toBe(0);
    expect(files.get("o/other.txt")).toMatchObject({ mode: 0o755, uid: 1000, gid: 1001, body: "other\n" });
  });

  it("verifies --checksum, and a mismatch names both digests and the Dockerfile position", async () => {
    const good = sha256("hello over http\n");
    const ok = await build(`FROM scratch\nADD --checksum=${good} ${u("/files/hello.txt")} /c/\n`);
    expect(ok.res.code, ok.res.stderr).toBe(0);
    expect(ok.files.get("c/hello.txt")?.body).toBe("hello over http\n");
    const wrong = sha256("something else");
    const bad = await build(`FROM scratch\n\nADD --checksum=${wrong} ${u("/files/hello.txt")} /c/\n`);
    expect(bad.res.code).toBe(1);
    expect(bad.res.stderr).toContain("[DIGEST_MISMATCH]");
    expect(bad.res.stderr).toContain(good);
    expect(bad.res.stderr).toContain(wrong);
    expect(bad.res.stderr).toMatch(/Dockerfile:3:1/);
    const malformed = await build(`FROM scratch\nADD --checksum=md5:abc ${u("/files/hello.txt")} /c/\n`);
    expect(malformed.res.stderr).toContain("[BAD_FLAG_VALUE]");
  });

  it("with --checksum, a cached step needs no request at all", async () => {
    web.files.set("/files/pinned.txt", Buffer.from("pinned\n"));
    const df = `FROM scratch\nADD --checksum=${sha256("pinned\n")} ${u("/files/pinned.txt")} /p/\n`;
    const first = await build(df);
    expect(first.res.code, first.res.stderr).toBe(0);
    const before = web.log.length;
    const again = await build(df);
    expect(again.res.code, again.res.stderr).toBe(0);
    expect(again.metadata["tsbuild.cache"]?.misses).toBe(0);
    expect(web.log.slice(before).filter((l) => l.path === "/files/pinned.txt")).toEqual([]);
  });

  it("a 404 is a clear error at the ADD line", async () => {
    const { res } = await build(`FROM scratch\nADD ${u("/files/missing.txt")} /m/\n`);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("[SOURCE_NOT_FOUND]");
    expect(res.stderr).toContain("the server answered 404");
    expect(res.stderr).toMatch(/Dockerfile:2:1/);
  });

  it("re-fetches conditionally (304), hits the cache after a server restart with the same content, misses when it changes", async () => {
    web.files.set("/files/cond.txt", Buffer.from("v1\n"));
    const df = `FROM scratch\nADD ${u("/files/cond.txt")} /cond/\n`;
    const first = await build(df);
    expect(first.res.code, first.res.stderr).toBe(0);
    expect(web.log.filter((l) => l.path === "/files/cond.txt").map((l) => l.status)).toEqual([200]);

    const second = await build(df);
    expect(second.res.code, second.res.stderr).toBe(0);
    expect(second.metadata["tsbuild.cache"]?.misses).toBe(0);
    const cond = web.log.filter((l) => l.path === "/files/cond.txt");
    expect(cond.map((l) => l.status)).toEqual([200, 304]);
    expect(cond[1]?.inm).toBeDefined();

    // A new server on the same port with the same content: the content digest is the key.
    const port = web.port;
    const files = web.files;
    await web.close();
    web = await startWeb(port, files);
    const third = await build(df);
    expect(third.res.code, third.res.stderr).toBe(0);
    expect(third.metadata["tsbuild.cache"]?.misses).toBe(0);

    // Not modified, but no cached step for this destination: downloaded again for the copy.
    const elsewhere = await build(`FROM scratch\nADD ${u("/files/cond.txt")} /elsewhere/\n`);
    expect(elsewhere.res.code, elsewhere.res.stderr).toBe(0);
    expect(elsewhere.files.get("elsewhere/cond.txt")?.body).toBe("v1\n");
    expect(web.log.filter((l) => l.path === "/files/cond.txt").map((l) => l.status)).toEqual([304, 304, 200]); // the restarted server's log

    web.files.set("/files/cond.txt", Buffer.from("v2\n"));
    const changed = await build(df);
    expect(changed.res.code, changed.res.stderr).toBe(0);
    expect(changed.metadata["tsbuild.cache"]?.misses).toBeGreaterThan(0);
    expect(changed.files.get("cond/cond.txt")?.body).toBe("v2\n");
  });

  it("retries a download whose connection drops halfway", async () => {
    web.drop.add("/files/big.bin");
    const { res, files } = await build(`FROM scratch\nADD ${u("/files/big.bin")} /b/\n`);
    expect(res.code, res.stderr).toBe(0);
    expect(files.get("b/big.bin")?.body?.length).toBe(300_000);
    expect(web.log.filter((l) => l.path === "/files/big.bin").length).toBe(2);
  });

  it("keeps a remote archive packed unless --unpack=true; --unpack=false keeps a local one packed", async () => {
    const packed = await build(`FROM scratch\nADD ${u("/files/a.tar.gz")} /t/\n`);
    expect(packed.res.code, packed.res.stderr).toBe(0);
    expect(packed.files.get("t/a.tar.gz")?.mode).toBe(0o600);
    expect(packed.files.has("t/inside.txt")).toBe(false);
    const unpacked = await build(`FROM scratch\nADD --unpack=true ${u("/files/a.tar.gz")} /t/\n`);
    expect(unpacked.res.code, unpacked.res.stderr).toBe(0);
    expect(unpacked.files.get("t/inside.txt")?.body).toBe("from the tar\n");
    expect(unpacked.files.has("t/a.tar.gz")).toBe(false);
    const local = await build("FROM scratch\nADD --unpack=false local.tar.gz /l/\nADD local.tar.gz /u/\n", {
      "local.tar.gz": web.files.get("/files/a.tar.gz") as Buffer,
    });
    expect(local.res.code, local.res.stderr).toBe(0);
    expect(local.files.has("l/local.tar.gz")).toBe(true);
    expect(local.files.has("l/inside.txt")).toBe(false);
    expect(local.files.get("u/inside.txt")?.body).toBe("from the tar\n");
  });

  it("mixes a URL and a local file in one ADD", async () => {
    const { res, files } = await build(`FROM scratch\nADD ${u("/files/other.txt")} local.txt /mix/\n`);
    expect(res.code, res.stderr).toBe(0);
    expect(files.get("mix/other.txt")?.body).toBe("other\n");
    expect(files.get("mix/local.txt")?.body).toBe("local\n");
  });
});

describe("ADD of a git repository", () => {
  let daemon: Server;
  const sha: Record<string, string> = {};
  const git = async (cwd: string, ...args: string[]) =>
    (await exec("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", ...args], { cwd })).stdout.trim();
  beforeAll(async () => {
    const work = join(dir.path, "gitwork");
    const repos = join(dir.path, "repos");
    await mkdir(work);
    await mkdir(repos);
    await git(work, "init", "-q");
    await writeFile(join(work, "msg.txt"), "one\n");
    await git(work, "add", "-A");
    await git(work, "commit", "-qm", "one");
    await git(work, "tag", "v1");
    sha.one = await git(work, "rev-parse", "HEAD");
    await writeFile(join(work, "msg.txt"), "two\n");
    await mkdir(join(work, "sub"));
    await writeFile(join(work, "sub/inner.txt"), "inner\n");
    await git(work, "add", "-A");
    await git(work, "commit", "-qm", "two");
    sha.two = await git(work, "rev-parse", "HEAD");
    await git(repos, "clone", "-q", "--bare", work, "repo.git");
    daemon = await startGitDaemon(repos);
  });
  afterAll(async () => {
    await daemon?.close();
  });
  const g = () => `git://127.0.0.1:${daemon.port}/repo.git`;

  it("copies a branch, a tag, a commit and a subdir as a directory, without .git", async () => {
    const { res, files } = await build(
      `FROM scratch\nADD ${g()}#main /main\nADD ${g()}#v1 /tag/\nADD ${g()}#${sha.one} /sha\nADD ${g()}#main:sub /sub\nADD ${g()}?ref=v1 /q\nADD ${g()}?ref=main&subdir=sub /qsub\n`,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(files.get("main/msg.txt")?.body).toBe("two\n");
    expect(files.get("main/sub/inner.txt")?.body).toBe("inner\n");
    expect(files.get("tag/msg.txt")?.body).toBe("one\n");
    expect(files.has("tag/sub")).toBe(false);
    expect(files.get("sha/msg.txt")?.body).toBe("one\n");
    expect(files.get("sub/inner.txt")?.body).toBe("inner\n");
    expect(files.get("q/msg.txt")?.body).toBe("one\n");
    expect(files.get("qsub/inner.txt")?.body).toBe("inner\n");
    expect([...files.keys()].some((p) => p.includes(".git"))).toBe(false);
    expect(files.get("main/msg.txt")).toMatchObject({ uid: 0, gid: 0 });
  });

  it("keeps .git with --keep-git-dir=true (and keep-git-dir=true in the query)", async () => {
    const { res, files } = await build(`FROM scratch\nADD --keep-git-dir=true ${g()}#main /k\nADD ${g()}?ref=main&keep-git-dir=true /kq\n`);
    expect(res.code, res.stderr).toBe(0);
    expect(files.get("k/.git/HEAD")?.body?.trim()).toBe(sha.two);
    expect(files.has("kq/.git/HEAD")).toBe(true);
    expect(files.get("k/msg.txt")?.body).toBe("two\n");
  });

  it("--checksum pins the commit: a match builds, a mismatch is an error naming both", async () => {
    const ok = await build(`FROM scratch\nADD --checksum=${sha.two} ${g()}#main /pin\n`);
    expect(ok.res.code, ok.res.stderr).toBe(0);
    const bad = await build(`FROM scratch\nADD --checksum=${sha.one} ${g()}#main /pin\n`);
    expect(bad.res.code).toBe(1);
    expect(bad.res.stderr).toContain("[DIGEST_MISMATCH]");
    expect(bad.res.stderr).toContain(sha.one);
    expect(bad.res.stderr).toContain(sha.two);
    expect(bad.res.stderr).toMatch(/Dockerfile:2:1/);
  });

  it("keys by the resolved commit: the same commit hits, a moved branch misses", async () => {
    const df = `FROM scratch\nADD ${g()}#main /c\n`;
    const first = await build(df);
    const again = await build(df);
    expect(first.res.code, first.res.stderr).toBe(0);
    expect(again.metadata["tsbuild.cache"]?.misses).toBe(0);
    const other = await build(`FROM scratch\nADD ${g()}#${sha.two} /c\n`);
    expect(other.metadata["tsbuild.cache"]?.misses).toBe(0);
    const work = join(dir.path, "gitwork");
    await writeFile(join(work, "msg.txt"), "three\n");
    await git(work, "commit", "-qam", "three");
    await git(work, "push", "-q", join(dir.path, "repos", "repo.git"), "main");
    const moved = await build(df);
    expect(moved.res.code, moved.res.stderr).toBe(0);
    expect(moved.metadata["tsbuild.cache"]?.misses).toBeGreaterThan(0);
    expect(moved.files.get("c/msg.txt")?.body).toBe("three\n");
  });

  it("an unknown ref is GIT_REF_NOT_FOUND at the ADD line", async () => {
    const { res } = await build(`FROM scratch\nADD ${g()}#nope /x\n`);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("[GIT_REF_NOT_FOUND]");
    expect(res.stderr).toMatch(/Dockerfile:2:1/);
  });
});
