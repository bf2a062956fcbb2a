// HTTP for the registry client on node:http/https: keep-alive agents owned by one transport (closed with it),
// replayable request bodies, redirects for GET/HEAD (blob storage often redirects), and network failures turned
// into RegistryErrors that name host:port.
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { AbortError, RegistryError } from "../errors.js";

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: URL;
  headers?: Record<string, string>;
  /** A factory, so that a request can be sent again (after a 401 or a redirect); a Buffer is sent with its length. */
  body?: () => Buffer | Readable;
  signal?: AbortSignal | undefined;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered (after redirects). */
  url: URL;
  body: IncomingMessage;
  /** Read the body as text, at most `limit` bytes (error documents, manifests). */
  text(limit?: number): Promise<string>;
  /** Read the whole body into memory, failing beyond `limit` bytes. */
  bytes(limit: number): Promise<Buffer>;
  /** Drop the body so the connection can be reused. */
  discard(): Promise<void>;
}

export interface Transport {
  request(req: HttpRequest): Promise<HttpResponse>;
  close(): void;
}

export interface TransportOptions {
  userAgent?: string;
  /** Socket inactivity timeout in ms (default 60 s). */
  idleTimeoutMs?: number;
}

const MAX_REDIRECTS = 5;

export function hostPort(url: URL): string {
  return url.port ? url.host : `${url.hostname}:${url.protocol === "https:" ? 443 : 80}`;
}

/** Turn a socket-level failure into a message a user can act on; never includes headers (credentials). */
export function networkError(e: unknown, url: URL): RegistryError {
  const err = e as NodeJS.ErrnoException;
  const where = hostPort(url);
  switch (err.code) {
    case "ECONNREFUSED":
      return new RegistryError("CONNECTION_REFUSED", `cannot connect to the registry at ${where}: connection refused`, {
        hint: "is the registry running, and is the host:port in the image name right?",
        cause: e,
      });
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new RegistryError("HOST_NOT_FOUND", `cannot resolve the registry host ${url.hostname}`, { cause: e });
    case "ETIMEDOUT":
    case "ESOCKETTIMEDOUT":
      return new RegistryError("TIMEOUT", `the registry at ${where} did not answer in time`, { cause: e });
    case "EPROTO":
    case "ERR_SSL_WRONG_VERSION_NUMBER":
      return new RegistryError("TLS_ERROR", `TLS handshake with ${where} failed (${err.message})`, {
        hint: `if the registry speaks plain HTTP, pass --insecure-registry ${url.host}`,
        cause: e,
      });
    default:
      if (typeof err.code === "string" && /CERT|SSL|TLS/.test(err.code)) {
        return new RegistryError("TLS_ERROR", `TLS with ${where} failed: ${err.message}`, {
          hint: `for a registry without a trusted certificate, pass --insecure-registry ${url.host} (plain HTTP)`,
          cause: e,
        });
      }
      return new RegistryError("NETWORK_ERROR", `connection to the registry at ${where} failed: ${err.message ?? String(e)}`, { cause: e });
  }
}

async function readAll(body: IncomingMessage, limit: number, url: URL): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      body.destroy();
      throw new RegistryError("RESPONSE_TOO_LARGE", `the response from ${url.host}${url.pathname} is larger than ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

export function createTransport(opts: TransportOptions = {}): Transport {
  const agentOpts = { keepAlive: true, maxSockets: 16 };
  const agents = { http: new http.Agent(agentOpts), https: new https.Agent(agentOpts) };
  const idle = opts.idleTimeoutMs ?? 60_000;
  const ua = opts.userAgent ?? "tsbuild/0.1.0";

  function once(req: HttpRequest, url: URL): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      if (req.signal?.aborted) {
        reject(new AbortError());
        return;
      }
      const isHttps = url.protocol === "https:";
      const body = req.body?.();
      const headers: Record<string, string> = { "user-agent": ua, ...req.headers };
      if (Buffer.isBuffer(body)) headers["content-length"] = String(body.length);
      else if (body === undefined && (req.method === "PUT" || req.method === "POST" || req.method === "PATCH")) headers["content-length"] ??= "0";
      const r = (isHttps ? https : http).request(url, {
        method: req.method,
        headers,
        agent: isHttps ? agents.https : agents.http,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      r.setTimeout(idle, () => r.destroy(Object.assign(new Error("socket timed out"), { code: "ETIMEDOUT" })));
      r.once("response", resolve);
      r.once("error", (e) => {
        // A file stream feeding the body must not stay open (and piped) after the request died.
        if (body !== undefined && !Buffer.isBuffer(body)) body.destroy();
        if (req.signal?.aborted) reject(new AbortError());
        else reject(networkError(e, url));
      });
      if (body === undefined) r.end();
      else if (Buffer.isBuffer(body)) r.end(body);
      else {
        body.once("error", (e) => r.destroy(e));
        body.pipe(r);
      }
    });
  }

  function wrap(res: IncomingMessage, url: URL): HttpResponse {
    return {
      status: res.statusCode ?? 0,
      headers: res.headers,
      url,
      body: res,
      async text(limit = 1024 * 1024) {
        return (await readAll(res, limit, url)).toString("utf8");
      },
      bytes: (limit) => readAll(res, limit, url),
      async discard() {
        // Even an empty body must be read to its end: only then does the agent reuse (or free) the socket.
        if (res.readableEnded || res.destroyed) return;
        res.resume();
        await new Promise<void>((resolve) => {
          res.once("end", resolve);
          res.once("close", resolve);
          res.once("error", () => resolve());
        });
      },
    };
  }

  return {
    async request(req) {
      let url = req.url;
      let headers = req.headers ?? {};
      for (let hop = 0; ; hop++) {
        const res = await once({ ...req, headers }, url);
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        const redirect = (req.method === "GET" || req.method === "HEAD") && [301, 302, 303, 307, 308].includes(status) && location;
        if (!redirect || hop >= MAX_REDIRECTS) return wrap(res, url);
        res.resume();
        const next = new URL(location, url);
        // Credentials for the registry must not travel to blob storage on another origin.
        if (next.origin !== url.origin) {
          const { authorization: _drop, ...rest } = headers;
          headers = rest;
        }
        url = next;
      }
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
