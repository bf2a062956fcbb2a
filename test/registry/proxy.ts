// A small HTTP proxy in front of a test registry: records every request, and can flip a byte of one blob,
// cut a blob's first download short (to exercise Range resume), or serve a canned response for a path.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface ProxyLogEntry {
  method: string;
  path: string;
  range?: string;
  status?: number;
  /** When the request arrived (ms since the epoch). */
  at: number;
}

export interface TestProxy {
  host: string;
  log: ProxyLogEntry[];
  /** Blob digests whose bytes get one bit flipped on the way through. */
  corrupt: Set<string>;
  /** Blob digest → bytes after which the first GET of that blob loses its connection. */
  dropOnce: Map<string, number>;
  /** Path → canned response. */
  canned: Map<string, { status: number; headers: Record<string, string>; body: string }>;
  stop(): Promise<void>;
}

export async function startProxy(upstreamPort: number): Promise<TestProxy> {
  const log: ProxyLogEntry[] = [];
  const corrupt = new Set<string>();
  const dropOnce = new Map<string, number>();
  const canned = new Map<string, { status: number; headers: Record<string, string>; body: string }>();

  function handle(req: IncomingMessage, res: ServerResponse) {
    const path = req.url ?? "/";
    const entry: ProxyLogEntry = { method: req.method ?? "GET", path, at: Date.now(), ...(req.headers.range ? { range: req.headers.range } : {}) };
    log.push(entry);
    const c = canned.get(path.split("?")[0] as string);
    if (c) {
      entry.status = c.status;
      res.writeHead(c.status, c.headers).end(c.body);
      return;
    }
    const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path.split("?")[0] as string)?.[1];
    const up = request({ host: "127.0.0.1", port: upstreamPort, method: req.method, path, headers: req.headers }, (ures) => {
      entry.status = ures.statusCode ?? 0;
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      const flip = req.method === "GET" && blob !== undefined && corrupt.has(blob) && (ures.statusCode ?? 0) < 300;
      let cut = req.method === "GET" && blob !== undefined && (ures.statusCode ?? 0) < 300 ? dropOnce.get(blob) : undefined;
      if (cut !== undefined && blob) dropOnce.delete(blob);
      let sent = 0;
      let flipped = false;
      ures.on("data", (chunk: Buffer) => {
        let out = chunk;
        if (flip && !flipped && out.length > 0) {
          out = Buffer.from(out);
          const i = Math.min(out.length - 1, 100);
          out[i] = (out[i] as number) ^ 0x01;
          flipped = true;
        }
        if (cut !== undefined && sent + out.length >= cut) {
          res.write(out.subarray(0, cut - sent));
          cut = undefined;
          ures.destroy();
          // Let the partial bytes reach the client, then cut the connection.
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        }
        sent += out.length;
        res.write(out);
      });
      ures.on("end", () => res.end());
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  }

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    log,
    corrupt,
    dropOnce,
    canned,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
