// Git and file servers on 127.0.0.1 for remote-context tests: `git daemon` (git://), `git http-backend` behind a
// node http server (smart http, so shallow fetches work), and static files with redirects and 404s.
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { join, normalize } from "node:path";
import { requireTool } from "./tools.js";

export interface Server {
  port: number;
  close(): Promise<void>;
}

/** A port nothing listens on right now (the kernel's pick, closed again). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`git daemon exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`git daemon did not listen on ${port}`);
}

/** `git daemon` exporting every repository below `base` (git://127.0.0.1:PORT/NAME.git). */
export async function startGitDaemon(base: string): Promise<Server> {
  await requireTool("git");
  const port = await freePort();
  const child = spawn("git", ["daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1", `--port=${port}`, `--base-path=${base}`, base], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr?.resume();
  await waitForPort(port, child);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/**
 * One node http server: `/git/...` runs `git http-backend` (CGI) over the repositories below `gitBase`; other paths
 * are files below `files`, `/redirect/X` answers 302 to `/X`, anything missing is 404.
 */
export async function startHttpServer(gitBase: string, files: string): Promise<Server> {
  await requireTool("git");
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname.startsWith("/redirect/")) {
      res.writeHead(302, { location: url.pathname.slice("/redirect".length) });
      res.end();
      return;
    }
    if (url.pathname.startsWith("/git/")) return cgi(req, res, url, gitBase);
    const path = normalize(join(files, decodeURIComponent(url.pathname)));
    if (!path.startsWith(files) || !existsSync(path)) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    createReadStream(path).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function cgi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, gitBase: string): void {
  const child = spawn("git", ["http-backend"], {
    env: {
      ...process.env,
      GIT_PROJECT_ROOT: gitBase,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: decodeURIComponent(url.pathname.slice("/git".length)),
      QUERY_STRING: url.search.replace(/^\?/, ""),
      REQUEST_METHOD: req.method ?? "GET",
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
      ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
      REMOTE_ADDR: "127.0.0.1",
    },
    stdio: ["pipe", "pipe", "ignore"],
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on("data", (c: Buffer) => {
    if (headersDone) return void res.write(c);
    head = Buffer.concat([head, c]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
      const i = line.indexOf(":");
      if (i < 0) continue;
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
      else headers[k] = v;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end + 4));
  });
  child.stdout.on("end", () => res.end());
}
