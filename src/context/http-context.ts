// An http(s) URL as the build context (`tsbuild build https://host/ctx.tar.gz`): one GET (following redirects), the
// body streamed through a sha256 into unpack-context.ts (a tar is the context, other bytes are the Dockerfile).
import { createHash } from "node:crypto";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { Transform } from "node:stream";
import { AbortError, BuildError, isTsbuildError } from "../errors.js";
import { unpackContext, type UnpackedContext } from "./unpack-context.js";

export interface HttpContextOptions {
  signal?: AbortSignal;
  onWarning?(message: string): void;
  /** Socket inactivity timeout in ms (default 60 s). */
  idleTimeoutMs?: number;
}

const MAX_REDIRECTS = 5;

/** Download `url` and unpack it into the empty directory `dest`; `digest` is the sha256 of the bytes as served. */
export async function fetchHttpContext(
  url: URL,
  dest: string,
  opts: HttpContextOptions = {},
): Promise<{ unpacked: UnpackedContext; digest: `sha256:${string}`; url: URL }> {
  const res = await get(url, opts);
  const hash = createHash("sha256");
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  res.body.once("error", (e) => tap.destroy(e));
  res.body.pipe(tap);
  try {
    const unpacked = await unpackContext(tap, dest, {
      source: res.url.href,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    });
    return { unpacked, digest: `sha256:${hash.digest("hex")}`, url: res.url };
  } finally {
    res.body.destroy();
  }
}

async function get(start: URL, opts: HttpContextOptions): Promise<{ body: IncomingMessage; url: URL }> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const res = await once(url, opts);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location && hop < MAX_REDIRECTS) {
      res.resume();
      const next = new URL(location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:")
        throw new BuildError("CONTEXT_DOWNLOAD_FAILED", `build context ${start.href}: redirected to ${next.protocol} URL, which tsbuild does not follow`);
      url = next;
      continue;
    }
    if (status === 200) return { body: res, url };
    res.resume();
    if (status === 404 || status === 410)
      throw new BuildError("CONTEXT_NOT_FOUND", `build context ${url.href}: the server answered ${status} ${res.statusMessage ?? ""}`.trimEnd(), {
        hint: "check the URL; it should name a tar archive (or a Dockerfile)",
      });
    if (status === 401 || status === 403)
      throw new BuildError("AUTH_FAILED", `build context ${url.href}: the server answered ${status} ${res.statusMessage ?? ""}`.trimEnd(), {
        hint: "tsbuild sends no credentials for a context URL; use a URL that needs none, or download it and pipe it into `tsbuild build -`",
      });
    throw new BuildError("CONTEXT_DOWNLOAD_FAILED", `build context ${url.href}: the server answered ${status} ${res.statusMessage ?? ""}`.trimEnd(), {
      hint: status >= 500 ? "the server failed; try again later" : "check the URL",
    });
  }
}

function once(url: URL, opts: HttpContextOptions): Promise<IncomingMessage> {
  const { signal } = opts;
  return new Promise<IncomingMessage>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const lib = url.protocol === "https:" ? https : http;
    const req = lib.get(url, { headers: { "user-agent": "tsbuild/0.1.0" }, ...(signal ? { signal } : {}) });
    req.setTimeout(opts.idleTimeoutMs ?? 60_000, () => req.destroy(Object.assign(new Error("no data for too long"), { code: "ETIMEDOUT" })));
    req.once("response", resolve);
    req.once("error", (e) => reject(signal?.aborted ? new AbortError() : networkError(e, url)));
  });
}

function networkError(e: unknown, url: URL): BuildError {
  if (isTsbuildError(e)) return e as BuildError;
  const err = e as NodeJS.ErrnoException;
  const where = url.port ? url.host : `${url.hostname}:${url.protocol === "https:" ? 443 : 80}`;
  const make = (code: "CONNECTION_REFUSED" | "HOST_NOT_FOUND" | "TIMEOUT" | "TLS_ERROR" | "NETWORK_ERROR", what: string, hint: string) =>
    new BuildError(code, `build context ${url.href}: ${what}`, { hint, cause: e });
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
