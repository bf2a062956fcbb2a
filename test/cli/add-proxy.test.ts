// Proxy build args for ADD downloads, through the real CLI: `--build-arg http_proxy/HTTPS_PROXY/no_proxy` route ADD
// http:// (absolute-URI request) and https:// (CONNECT tunnel, TLS end to end) through a proxy the test runs on
// 127.0.0.1, which alone knows the hosts `files.test` and `git.test` (git http-backend, for ADD of a git URL);
// no_proxy sends a host around it; nothing of it lands in the image.
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeProject } from "../helpers/project.js";
import { tempDir, tsbuildProcess } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { startHttpServer, type Server } from "../helpers/git-servers.js";
import { selfSignedCert } from "../helpers/self-signed-cert.js";
import { exec } from "../helpers/tools.js";

let dir: Awaited<ReturnType<typeof tempDir>>;
let root: string;
let cert: string;
const servers: (http.Server | https.Server)[] = [];
const sockets = new Set<Socket>();
/** What the proxy was asked for: `GET <absolute URL>` or `CONNECT host:port`. */
const proxied: string[] = [];
let proxyPort: number;
let gitServer: Server | undefined;

const BODY = "through the proxy\n";

async function listen(s: http.Server | https.Server): Promise<number> {
  servers.push(s);
  s.on("connection", (c: Socket) => {
    sockets.add(c);
    c.on("close", () => sockets.delete(c));
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return (s.address() as AddressInfo).port;
}

function serveFiles(_req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(_req.url ?? "/", "http://x");
  if (url.pathname !== "/f.txt") return void res.writeHead(404).end();
  res.writeHead(200, { etag: `"${createHash("sha256").update(BODY).digest("hex").slice(0, 8)}"`, "content-length": Buffer.byteLength(BODY) }).end(BODY);
}

const r = (args: string[]) => tsbuildProcess([...args, "--root", root], { env: { ...process.env, NODE_EXTRA_CA_CERTS: cert } });

beforeAll(async () => {
  dir = await tempDir("add-proxy-");
  root = join(dir.path, "store");
  await storeWithBusybox(root);
  const tls = await selfSignedCert(dir.path, "files.test", "DNS:files.test");
  cert = tls.cert;
  const plainPort = await listen(http.createServer(serveFiles));
  const tlsPort = await listen(https.createServer({ key: await readFile(tls.key), cert: await readFile(tls.cert) }, serveFiles));
  // The proxy: `files.test` (port 80 or 443) is reachable only through it.
  // A bare repository served by `git http-backend`, as git.test.
  const work = join(dir.path, "work");
  await mkdir(work, { recursive: true });
  await writeFile(join(work, "README"), "from git\n");
  const git = (cwd: string, ...args: string[]) => exec("git", ["-C", cwd, "-c", "user.name=t", "-c", "user.email=t@t", ...args]);
  await git(work, "init", "-q", "-b", "main");
  await git(work, "add", "-A");
  await git(work, "commit", "-qm", "one");
  await mkdir(join(dir.path, "repos"), { recursive: true });
  await git(join(dir.path, "repos"), "clone", "-q", "--bare", work, "repo.git");
  gitServer = await startHttpServer(join(dir.path, "repos"), join(dir.path, "repos"));
  const upstream: Record<string, number> = { "files.test": plainPort, "git.test": gitServer.port };
  const proxy = http.createServer((req, res) => {
    proxied.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? "/");
    const port = upstream[target.hostname];
    if (port === undefined) return void res.writeHead(502).end();
    const up = http.request({ host: "127.0.0.1", port, method: req.method, path: target.pathname + target.search, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  proxy.on("connect", (req: http.IncomingMessage, client: Socket, head: Buffer) => {
    proxied.push(`CONNECT ${req.url}`);
    sockets.add(client);
    if (req.url !== "files.test:443") return void client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
    const up = net.connect(tlsPort, "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
  });
  proxyPort = await listen(proxy);
});

afterAll(async () => {
  await gitServer?.close();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await dir?.cleanup();
});

const project = (name: string, dockerfile: string, files: Record<string, string> = {}) => writeProject(dir.path, name, dockerfile, files);

describe("ADD through a proxy given as a build arg", () => {
  it("http:// goes through http_proxy as an absolute-URI request; the proxy stays out of the image", async () => {
    const ctx = await project("plain", "FROM busybox:local\nADD http://files.test/f.txt /f.txt\n");
    const out = join(dir.path, "out-plain");
    const before = proxied.length;
    const b = await r(["build", "--build-arg", `http_proxy=http://127.0.0.1:${proxyPort}`, "-t", "proxied:1", "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "f.txt"), "utf8")).toBe(BODY);
    expect(proxied.slice(before)).toEqual(["GET http://files.test/f.txt"]);
    const inspect = (await r(["inspect", "proxied:1"])).stdout;
    expect(inspect).not.toContain(String(proxyPort));
    expect(inspect).not.toMatch(/proxy/i);
  });

  it("https:// goes through HTTPS_PROXY with CONNECT, the server's certificate checked inside the tunnel", async () => {
    const ctx = await project("tls", "FROM busybox:local\nADD https://files.test/f.txt /f.txt\n");
    const out = join(dir.path, "out-tls");
    const before = proxied.length;
    const b = await r(["build", "--build-arg", `HTTPS_PROXY=http://127.0.0.1:${proxyPort}`, "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "f.txt"), "utf8")).toBe(BODY);
    expect(proxied.slice(before)).toEqual(["CONNECT files.test:443"]);
  });

  it("a git repository over http is fetched through http_proxy too", async () => {
    const ctx = await project("git", "FROM busybox:local\nADD http://git.test/git/repo.git#main /src\n");
    const out = join(dir.path, "out-git");
    const before = proxied.length;
    const b = await r(["build", "--build-arg", `HTTP_PROXY=http://127.0.0.1:${proxyPort}`, "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "src/README"), "utf8")).toBe("from git\n");
    expect(proxied.slice(before)).toContain("GET http://git.test/git/repo.git/info/refs?service=git-upload-pack");
  });

  it("no_proxy sends a listed host around the proxy (here: to a name only the proxy knows, so it fails)", async () => {
    const ctx = await project("bypass", "FROM busybox:local\nADD http://files.test/f.txt /f.txt\n");
    const before = proxied.length;
    const b = await r(["build", "--build-arg", `http_proxy=http://127.0.0.1:${proxyPort}`, "--build-arg", "no_proxy=other.test,files.test", ctx]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/ADD http:\/\/files\.test\/f\.txt: the host files\.test is not known \[HOST_NOT_FOUND\]/);
    expect(proxied.length).toBe(before);
  });

  it("a proxy that refuses the tunnel is a clear error naming it", async () => {
    const ctx = await project("refused", "FROM busybox:local\nADD https://elsewhere.test/f.txt /f.txt\n");
    const b = await r(["build", "--build-arg", `https_proxy=http://127.0.0.1:${proxyPort}`, ctx]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/the proxy 127\.0\.0\.1:\d+ refused to connect to elsewhere\.test:443: 403 Forbidden \[DOWNLOAD_FAILED\]/);
  });
});
