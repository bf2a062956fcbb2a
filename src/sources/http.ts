// The one http(s) fetcher (build contexts and ADD of a URL): GET with redirects, conditional requests and errors a
// user understands, and downloadFile(): the body streamed into a file through a sha256, retried when the connection
// drops, checked against an expected digest before anyone uses it.
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import tls from "node:tls";
import { pipeline } from "node:stream/promises";
import { AbortError, BuildError, isTsbuildError, type ErrorCode } from "../errors.js";
import { sha256Tap } from "../util/sha256-tap.js";
import { proxyConfig, proxyFor, type ProxyConfig } from "./proxy.js";

export interface HttpGetOptions {
  signal?: AbortSignal;
  /** Socket inactivity timeout in ms (default 60 s). */
  idleTimeoutMs?: number;
  /** Whose download this is: a build context (CONTEXT_* codes) or a source of ADD (SOURCE_NOT_FOUND, DOWNLOAD_FAILED). */
  purpose?: "context" | "source";
  /** How messages name the download; default `build context URL` / `ADD URL`. */
  label?: string;
  /** Extra request headers (If-None-Match, If-Modified-Since). */
  headers?: Record<string, string>;
  /** The proxies to use (proxy.ts rules); default: this process's HTTP_PROXY/HTTPS_PROXY/NO_PROXY. */
  proxy?: ProxyConfig;
}

export interface HttpResponse {
  /** 200, or 304 when a conditional request found the content unchanged. */
  status: 200 | 304;
  body: IncomingMessage;
  /** The URL after redirects. */
  url: URL;
  headers: IncomingHttpHeaders;
}

const MAX_REDIRECTS = 5;

/** GET `start`, following redirects; any status but 200 (and 304 for a conditional request) is a BuildError. */
export async function httpGet(start: URL, opts: HttpGetOptions = {}): Promise<HttpResponse> {
  const label = labelOf(start, opts);
  const context = opts.purpose !== "source";
  let url = start;
  for (let hop = 0; ; hop++) {
    const res = await once(url, opts, label);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location && hop < MAX_REDIRECTS) {
      res.resume();
      const next = new URL(location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:")
        throw new BuildError(
          context ? "CONTEXT_DOWNLOAD_FAILED" : "DOWNLOAD_FAILED",
          `${label}: redirected to ${next.protocol} URL, which tsbuild does not follow`,
        );
      url = next;
      continue;
    }
    if (status === 200 || (status === 304 && opts.headers !== undefined)) return { status, body: res, url, headers: res.headers };
    res.resume();
    const answered = `${label}: the server answered ${status} ${res.statusMessage ?? ""}`.trimEnd();
    if (status === 404 || status === 410)
      throw new BuildError(context ? "CONTEXT_NOT_FOUND" : "SOURCE_NOT_FOUND", answered, {
        hint: context ? "check the URL; it should name a tar archive (or a Dockerfile)" : "check the URL; the server has no file there",
      });
    if (status === 401 || status === 403)
      throw new BuildError("AUTH_FAILED", answered, {
        hint: context
          ? "tsbuild sends no credentials for a context URL; use a URL that needs none, or download it and pipe it into `tsbuild build -`"
          : "tsbuild sends no credentials for an ADD URL; use a URL that needs none, or download the file into the build context",
      });
    throw new BuildError(context ? "CONTEXT_DOWNLOAD_FAILED" : "DOWNLOAD_FAILED", answered, {
      hint: status >= 500 ? "the server failed; try again later" : "check the URL",
    });
  }
}

export interface DownloadOptions extends HttpGetOptions {
  /** Attempts after a dropped connection (default 3). */
  retries?: number;
  /** The digest the bytes must have (ADD --checksum); DIGEST_MISMATCH otherwise, and the file is removed. */
  expected?: `sha256:${string}`;
  /** Validators of a copy downloaded before: the server may answer 304, and nothing is downloaded. */
  conditional?: { etag?: string; lastModified?: string };
}

export type DownloadResult =
  | { status: 304; url: URL }
  | {
      status: 200;
      url: URL;
      digest: `sha256:${string}`;
      size: number;
      etag?: string;
      lastModified?: string;
      /** Last-Modified as a time, when the server sent a valid one. */
      mtime?: Date;
    };

/** Download `url` into `file` (created or replaced), hashing the bytes as they are written. */
export async function downloadFile(url: URL, file: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const label = labelOf(url, opts);
  const retries = opts.retries ?? 3;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.conditional?.etag) headers["if-none-match"] = opts.conditional.etag;
  if (opts.conditional?.lastModified) headers["if-modified-since"] = opts.conditional.lastModified;
  const getOpts: HttpGetOptions = { ...opts, label, purpose: opts.purpose ?? "source", ...(Object.keys(headers).length ? { headers } : {}) };
  for (let attempt = 0; ; attempt++) {
    const tap = sha256Tap();
    let res: HttpResponse;
    try {
      res = await httpGet(url, getOpts);
      if (res.status === 304) {
        res.body.resume();
        return { status: 304, url: res.url };
      }
      await pipeline(res.body, tap, createWriteStream(file), opts.signal ? { signal: opts.signal } : {});
      const length = Number(res.headers["content-length"]);
      if (Number.isFinite(length) && res.headers["content-length"] !== undefined && tap.bytes() !== length)
        throw Object.assign(new Error(`got ${tap.bytes()} of ${length} bytes`), { code: "ECONNRESET" });
    } catch (e) {
      await rm(file, { force: true });
      if (opts.signal?.aborted) throw new AbortError();
      // A connection reset before the answer arrives is a network error of httpGet; one during the body is raw.
      const again = isTsbuildError(e) ? e.code === "NETWORK_ERROR" && dropped(e.cause) : dropped(e);
      if (attempt < retries && again) {
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        continue;
      }
      if (isTsbuildError(e)) throw e;
      throw new BuildError("CONNECTION_DROPPED", `${label}: the connection dropped during the download (${(e as Error).message})`, {
        hint: `tried ${attempt + 1} times; check the network or the server, then build again`,
        cause: e,
      });
    }
    const digest = tap.digest();
    if (opts.expected !== undefined && digest !== opts.expected) {
      await rm(file, { force: true });
      throw new BuildError("DIGEST_MISMATCH", `${label}: the downloaded file has digest ${digest}, but --checksum wants ${opts.expected}`, {
        hint: "the file on the server is not the one the Dockerfile pins; check the URL, or update --checksum if the new file is trusted",
      });
    }
    const etag = header(res.headers.etag);
    const lastModified = header(res.headers["last-modified"]);
    const mtime = lastModified !== undefined ? new Date(lastModified) : undefined;
    return {
      status: 200,
      url: res.url,
      digest,
      size: tap.bytes(),
      ...(etag !== undefined ? { etag } : {}),
      ...(lastModified !== undefined ? { lastModified } : {}),
      ...(mtime !== undefined && !Number.isNaN(mtime.getTime()) ? { mtime } : {}),
    };
  }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A connection that broke after the answer began: worth another try. */
function dropped(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return ["ECONNRESET", "EPIPE", "ETIMEDOUT", "ERR_STREAM_PREMATURE_CLOSE"].includes(code) || /aborted|premature close|socket hang up/i.test(String(e));
}

function labelOf(url: URL, opts: HttpGetOptions): string {
  return opts.label ?? (opts.purpose === "source" ? `ADD ${url.href}` : `build context ${url.href}`);
}

async function once(url: URL, opts: HttpGetOptions, label: string): Promise<IncomingMessage> {
  const { signal } = opts;
  let proxy: URL | undefined;
  try {
    proxy = proxyFor(url, opts.proxy ?? proxyConfig(process.env));
  } catch (e) {
    throw new BuildError("BAD_FLAG_VALUE", `${label}: ${(e as Error).message}`, { hint: "set http_proxy/https_proxy to a URL such as http://proxy:3128" });
  }
  const headers: Record<string, string> = { "user-agent": "tsbuild/0.1.0", ...(opts.headers ?? {}) };
  const auth = proxy && proxyAuthorization(proxy);
  // An https URL through a proxy: a CONNECT tunnel, and TLS to the server inside it (the proxy sees no content).
  const tunnel = proxy && url.protocol === "https:" ? await connectTunnel(proxy, url, auth, opts, label) : undefined;
  return new Promise<IncomingMessage>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const common = { ...(signal ? { signal } : {}) };
    const req = tunnel
      ? https.get(url, { ...common, headers, createConnection: () => tls.connect({ socket: tunnel, servername: url.hostname.replace(/^\[|\]$/g, "") }) })
      : proxy
        ? // Plain http through a proxy: the absolute URL as the request target.
          (proxy.protocol === "https:" ? https : http).get({
            ...common,
            host: proxy.hostname,
            port: proxy.port || (proxy.protocol === "https:" ? 443 : 80),
            path: url.href,
            headers: { ...headers, host: url.host, ...(auth ? { "proxy-authorization": auth } : {}) },
          })
        : (url.protocol === "https:" ? https : http).get(url, { ...common, headers });
    req.setTimeout(opts.idleTimeoutMs ?? 60_000, () => req.destroy(Object.assign(new Error("no data for too long"), { code: "ETIMEDOUT" })));
    req.once("response", resolve);
    req.once("error", (e) => reject(signal?.aborted ? new AbortError() : networkError(e, proxy && !tunnel ? proxy : url, label, proxy && !tunnel)));
  });
}

function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username) return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}`;
}

/** A socket to `url`'s host:port through the proxy's CONNECT. */
function connectTunnel(proxy: URL, url: URL, auth: string | undefined, opts: HttpGetOptions, label: string): Promise<Socket> {
  const { signal } = opts;
  const target = `${url.hostname}:${url.port || 443}`;
  return new Promise<Socket>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const req = (proxy.protocol === "https:" ? https : http).request({
      host: proxy.hostname,
      port: proxy.port || (proxy.protocol === "https:" ? 443 : 80),
      method: "CONNECT",
      path: target,
      headers: { host: target, ...(auth ? { "proxy-authorization": auth } : {}) },
      ...(signal ? { signal } : {}),
    });
    req.setTimeout(opts.idleTimeoutMs ?? 60_000, () => req.destroy(Object.assign(new Error("no data for too long"), { code: "ETIMEDOUT" })));
    req.once("connect", (res, socket) => {
      if (res.statusCode === 200) {
        req.setTimeout(0);
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(
        new BuildError(
          opts.purpose === "source" ? "DOWNLOAD_FAILED" : "CONTEXT_DOWNLOAD_FAILED",
          `${label}: the proxy ${proxy.host} refused to connect to ${target}: ${res.statusCode} ${res.statusMessage ?? ""}`.trimEnd(),
          {
            hint:
              res.statusCode === 407
                ? "the proxy wants credentials: put them in the proxy URL (http://user:password@proxy:port)"
                : "check the proxy settings (https_proxy, no_proxy)",
          },
        ),
      );
    });
    req.once("error", (e) => reject(signal?.aborted ? new AbortError() : networkError(e, proxy, label, true)));
    req.end();
  });
}

function networkError(e: unknown, url: URL, label: string, viaProxy = false): BuildError {
  if (isTsbuildError(e)) return e as BuildError;
  const err = e as NodeJS.ErrnoException;
  const where = `${viaProxy ? "the proxy " : ""}${url.port ? url.host : `${url.hostname}:${url.protocol === "https:" ? 443 : 80}`}`;
  const make = (code: ErrorCode, what: string, hint: string) => new BuildError(code, `${label}: ${what}`, { hint, cause: e });
  switch (err.code) {
    case "ECONNREFUSED":
      return make("CONNECTION_REFUSED", `cannot connect to ${where}: connection refused`, "is the server running, and is the host:port in the URL right?");
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return make("HOST_NOT_FOUND", `the host ${url.hostname} is not known`, "check the host name in the URL, and the machine's DNS");
    case "ETIMEDOUT":
      return make("TIMEOUT", `${where} did not answer in time`, "check the network, or try again");
    default:
      if (/CERT|SSL|TLS/i.test(err.code ?? "") || /certificate|ssl|tls/i.test(err.message ?? ""))
        return make("TLS_ERROR", `the TLS connection to ${where} failed: ${err.message}`, "check the server's certificate");
      return make("NETWORK_ERROR", `cannot download from ${where}: ${err.message}`, "check the network and the URL");
  }
}
