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

/** Certificate problems Node reports by OpenSSL's verify-error names (not all of them contain "CERT"). */
const CERT_ERRORS = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Turn a socket-level failure into a message a user can act on; never includes headers (credentials). */
export function networkError(e: unknown, url: URL): RegistryError {
  const err = e as NodeJS.ErrnoException;
  const where = hostPort(url);
  const code = typeof err.code === "string" ? err.code : "";
  const message = err.message ?? String(e);
  switch (code) {
    case "ECONNREFUSED":
      return new RegistryError("CONNECTION_REFUSED", `cannot connect to the registry at ${where}: connection refused`, {
        hint: "is the registry running, and is the host:port in the image name right?",
        cause: e,
      });
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EHOSTDOWN":
    case "ENETDOWN":
    case "EADDRNOTAVAIL":
      return new RegistryError(
        "HOST_UNREACHABLE",
        `cannot reach the registry at ${where}: ${code === "ENETUNREACH" || code === "ENETDOWN" ? "network" : "host"} unreachable`,
        {
          hint: "check the host:port in the image name and this machine's network (route, VPN, firewall)",
          cause: e,
        },
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return new RegistryError("HOST_NOT_FOUND", `cannot resolve the registry host ${url.hostname}`, {
        hint: "check the registry host in the image name (a name without a dot or port before the first / is a Docker Hub repository)",
        cause: e,
      });
    case "ETIMEDOUT":
    case "ESOCKETTIMEDOUT":
      return new RegistryError("TIMEOUT", `the registry at ${where} did not answer in time`, {
        hint: "check that the host:port is a registry and reachable; set TSBUILD_REGISTRY_TIMEOUT=SECONDS to wait longer",
        cause: e,
      });
    case "ECONNRESET":
    case "EPIPE":
      return new RegistryError("CONNECTION_DROPPED", `the registry at ${where} closed the connection`, {
        hint: `if it speaks plain HTTP, pass --insecure-registry ${url.host}; otherwise try again`,
        cause: e,
      });
  }
  if (code === "EPROTO" || code.startsWith("ERR_SSL_") || /wrong version number|packet length too long|http request/i.test(message)) {
    // An HTTP server answering a TLS ClientHello: OpenSSL sees a record that is no TLS.
    const plain = /wrong version number|http request|packet length/i.test(message);
    return new RegistryError(
      "TLS_ERROR",
      plain
        ? `the registry at ${where} does not speak HTTPS (it answered the TLS handshake with plain HTTP)`
        : `TLS handshake with the registry at ${where} failed (${code || "protocol error"})`,
      { hint: `if the registry speaks plain HTTP, pass --insecure-registry ${url.host}`, cause: e },
    );
  }
  if (CERT_ERRORS.has(code) || /CERT|SSL|TLS/.test(code)) {
    return new RegistryError("TLS_ERROR", `the certificate of the registry at ${where} is not trusted: ${message} (${code})`, {
      hint: `trust its CA with NODE_EXTRA_CA_CERTS=/path/to/ca.pem, or, if the registry also speaks plain HTTP, pass --insecure-registry ${url.host}`,
      cause: e,
    });
  }
  return new RegistryError("NETWORK_ERROR", `connection to the registry at ${where} failed: ${message}`, {
    hint: "check the registry address and this machine's network",
    cause: e,
  });
}

async function readAll(body: IncomingMessage, limit: number, url: URL): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > limit) {
        body.destroy();
        throw new RegistryError("RESPONSE_TOO_LARGE", `the response from ${url.host}${url.pathname} is larger than ${limit} bytes`);
      }
      chunks.push(c);
    }
  } catch (e) {
    // A connection that breaks while the body arrives ("aborted", ECONNRESET, a socket timeout) is the network's doing.
    if (e instanceof RegistryError) throw e;
    throw networkError(
      typeof (e as NodeJS.ErrnoException).code === "string" ? e : Object.assign(new Error((e as Error).message), { code: "ECONNRESET", cause: e }),
      url,
    );
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
