// The OCI distribution API for one repository of one registry: manifests and blobs by digest, with auth challenges
// answered transparently, blob downloads that resume with HTTP Range after a dropped connection, and uploads that
// are monolithic for small blobs, chunked (PATCH) for large ones, or streamed when the digest is not known ahead.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AbortError, RegistryError, UsageError, throwIfAborted } from "../errors.js";
import { isDigest, MediaType, type Digest } from "../image/types.js";
import { authFailed, createAuthenticator, repositoryScope, type Authenticator } from "./auth.js";
import type { BlobSource } from "./blob-source.js";
import { dockerConfigPath, lookupCredentials, type Credentials } from "./credentials.js";
import { insecureRegistries, resolveEndpoint, type RegistryEndpoint } from "./endpoint.js";
import { createTransport, hostPort, type HttpRequest, type HttpResponse, type Transport } from "./transport.js";
import { verifyingStream } from "./verify-stream.js";
import { sha256Tap } from "../util/sha256-tap.js";

export interface RegistryOptions {
  /** Extra hosts spoken to over plain HTTP (besides loopback and $TSBUILD_INSECURE_REGISTRIES). */
  insecureRegistries?: string[];
  /** Docker config file with credentials (default $DOCKER_CONFIG/config.json or ~/.docker/config.json). */
  authFile?: string;
  /** Environment for DOCKER_CONFIG, HOME and TSBUILD_INSECURE_REGISTRIES (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Blobs up to this size are uploaded with one PUT; larger ones in PATCH chunks (default 8 MiB). */
  monolithicMax?: number;
  /** PATCH chunk size for large uploads (default 64 MiB). */
  chunkSize?: number;
  /** Attempts per blob download/upload when the connection drops (default 4). */
  maxAttempts?: number;
  /** Use these credentials instead of the config file's (login checks them before saving). */
  credentials?: Credentials;
  /** A request fails with TIMEOUT after this long without a byte from the registry (default $TSBUILD_REGISTRY_TIMEOUT seconds, else 60 s). */
  timeoutMs?: number;
}

/** The socket inactivity timeout: the option, else $TSBUILD_REGISTRY_TIMEOUT (seconds), else the transport's 60 s. */
function registryTimeout(env: NodeJS.ProcessEnv, ms: number | undefined): number | undefined {
  if (ms !== undefined) return ms;
  const raw = env["TSBUILD_REGISTRY_TIMEOUT"];
  if (raw === undefined || raw === "") return undefined;
  const secs = Number(raw);
  if (!Number.isFinite(secs) || secs <= 0)
    throw new UsageError("BAD_DURATION", `TSBUILD_REGISTRY_TIMEOUT=${raw}: must be a positive number of seconds`, { hint: "e.g. TSBUILD_REGISTRY_TIMEOUT=30" });
  return secs * 1000;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

/** A registry session: one transport and one authenticator, shared by all repositories it opens. */
export interface RegistrySession {
  readonly endpoint: RegistryEndpoint;
  /** With `push`, every request asks for pull+push access, so a push session needs one token per repository. */
  repository(name: string, opts?: { push?: boolean }): Repository;
  /** GET /v2/ with authentication: resolves when the registry accepts us, throws RegistryError otherwise. */
  ping(signal?: AbortSignal): Promise<void>;
  close(): void;
}

export interface Repository {
  readonly registry: string;
  /** Repository path inside the registry ("library/busybox"). */
  readonly name: string;
  /** Fetch a manifest or index by tag or digest; a digest reference is verified against the bytes. */
  getManifest(reference: string, opts?: { accept?: string[]; signal?: AbortSignal }): Promise<FetchedManifest>;
  /** Upload a manifest (any media type) under a tag or its digest; returns the digest of the bytes. */
  putManifest(reference: string, bytes: Buffer, mediaType: string, opts?: { signal?: AbortSignal }): Promise<Digest>;
  /** Size of a blob when the repository has it, else undefined. */
  hasBlob(digest: Digest, opts?: { signal?: AbortSignal }): Promise<number | undefined>;
  /** A verified stream of a blob: fails (instead of ending) on a wrong size or digest; resumes dropped connections. */
  getBlob(digest: Digest, opts?: { size?: number; signal?: AbortSignal; what?: string }): Readable;
  /** Upload a blob: a stream (digest computed on the way), a Buffer, or a re-openable source with known digest. */
  putBlob(data: Readable | Buffer | BlobSource, opts?: { signal?: AbortSignal }): Promise<{ digest: Digest; size: number; uploaded: boolean }>;
  /** Ask the registry to link a blob from another repository; true when it did (no upload needed). */
  mountBlob(digest: Digest, from: string, opts?: { signal?: AbortSignal }): Promise<boolean>;
}

export const MANIFEST_ACCEPT = [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList];
const MAX_MANIFEST = 4 * 1024 * 1024;

interface RegistryErrorBody {
  errors?: { code?: string; message?: string }[];
}

async function errorDetail(res: HttpResponse): Promise<string> {
  if (res.body.readableEnded || res.body.destroyed) return "";
  let text = "";
  try {
    text = await res.text(64 * 1024);
  } catch {
    return "";
  }
  try {
    const doc = JSON.parse(text) as RegistryErrorBody;
    const errs = (doc.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(": ")).filter((s) => s !== "");
    if (errs.length > 0) return errs.join("; ");
  } catch {
    // not a registry error document
  }
  return text.trim().slice(0, 200);
}

/** Errors that mean the connection broke mid-way and another attempt may succeed. */
function retryable(e: unknown): boolean {
  if (e instanceof AbortError) return false;
  if (e instanceof RegistryError) return ["NETWORK_ERROR", "TIMEOUT", "CONNECTION_DROPPED", "SERVER_ERROR"].includes(e.code);
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED" || code === "ERR_STREAM_PREMATURE_CLOSE" || (e as Error).message === "aborted";
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export function openRegistry(registry: string, opts: RegistryOptions = {}): RegistrySession {
  const env = opts.env ?? process.env;
  const endpoint = resolveEndpoint(registry, insecureRegistries(env, opts.insecureRegistries));
  const idleTimeoutMs = registryTimeout(env, opts.timeoutMs);
  const transport: Transport = createTransport(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {});
  const authFile = dockerConfigPath(env, opts.authFile);
  const auth: Authenticator = createAuthenticator({ registry, transport, credentials: async () => opts.credentials ?? lookupCredentials(registry, authFile) });
  const monolithicMax = opts.monolithicMax ?? 8 * 1024 * 1024;
  const chunkSize = opts.chunkSize ?? 64 * 1024 * 1024;
  const maxAttempts = opts.maxAttempts ?? 4;

  /** One request with auth: a 401 is answered once, then retried with the new Authorization header. */
  async function send(req: Omit<HttpRequest, "headers"> & { headers?: Record<string, string>; scopes: string[] }): Promise<HttpResponse> {
    const { scopes, ...rest } = req;
    const h = await auth.header(scopes, req.signal);
    let res = await transport.request({ ...rest, headers: { ...rest.headers, ...(h ? { authorization: h } : {}) } });
    if (res.status !== 401) return checkDenied(res);
    const challenge = res.headers["www-authenticate"];
    // The registry's own words ("UNAUTHORIZED: authentication required") go into the message if we cannot answer.
    const refused = await errorDetail(res);
    await res.discard();
    let fresh: string;
    try {
      fresh = await auth.challenge(challenge, scopes, req.signal);
    } catch (e) {
      // A bare "no credentials" / "credentials refused" gets the registry's reason (a HEAD's 401 has no body: ask with GET).
      const bare =
        e instanceof RegistryError &&
        (e.code === "AUTH_REQUIRED" || e.code === "AUTH_FAILED") &&
        e.message === authFailed(registry, e.code === "AUTH_FAILED").message;
      if (!bare) throw e;
      const detail = refused || (req.method === "HEAD" ? await refusalOf({ ...rest, method: "GET" }) : "");
      throw detail ? authFailed(registry, e.code === "AUTH_FAILED", detail) : e;
    }
    res = await transport.request({ ...rest, headers: { ...rest.headers, authorization: fresh } });
    if (res.status === 401) {
      const detail =
        (await errorDetail(res)) ||
        (req.method === "HEAD" ? await refusalOf({ ...rest, method: "GET", headers: { ...rest.headers, authorization: fresh } }) : "");
      throw authFailed(registry, await auth.hasCredentials(), detail || undefined);
    }
    return checkDenied(res);
  }

  /** The error document of a refused request (for the message), or "" when the registry sends none. */
  async function refusalOf(req: HttpRequest): Promise<string> {
    try {
      const res = await transport.request(req);
      const detail = res.status === 401 || res.status === 403 ? await errorDetail(res) : "";
      await res.discard();
      return detail;
    } catch {
      return "";
    }
  }

  async function checkDenied(res: HttpResponse): Promise<HttpResponse> {
    if (res.status !== 403) return res;
    const detail = await errorDetail(res);
    throw new RegistryError("ACCESS_DENIED", `${registry} denied access${detail ? ` (${detail})` : ""}`, {
      hint: `check that your account may use this repository; \`tsbuild login ${registry}\` to change credentials`,
    });
  }

  function unexpected(res: HttpResponse, what: string, detail: string): RegistryError {
    const code = res.status >= 500 ? "SERVER_ERROR" : "UNEXPECTED_STATUS";
    return new RegistryError(code, `${what}: ${hostPort(endpoint.base)} answered ${res.status}${detail ? ` (${detail})` : ""}`);
  }

  function repository(name: string, ro: { push?: boolean } = {}): Repository {
    const push = [repositoryScope(name, ["pull", "push"])];
    const pull = ro.push ? push : [repositoryScope(name, ["pull"])];
    const api = (path: string) => new URL(`/v2/${name}/${path}`, endpoint.base);
    const where = (ref: string) => `${registry}/${name}${ref.startsWith("sha256:") ? "@" : ":"}${ref}`;

    function uploadUrl(location: string | string[] | undefined, what: string): URL {
      const loc = Array.isArray(location) ? location[0] : location;
      if (!loc) throw new RegistryError("UPLOAD_FAILED", `${what}: the registry sent no upload location`);
      return new URL(loc, endpoint.base);
    }

    async function startUpload(signal: AbortSignal | undefined, what: string): Promise<URL> {
      const res = await send({ method: "POST", url: api("blobs/uploads/"), scopes: push, signal });
      if (res.status !== 202) throw unexpected(res, `${what}: starting an upload`, await errorDetail(res));
      await res.discard();
      return uploadUrl(res.headers.location, what);
    }

    async function finishUpload(
      loc: URL,
      digest: Digest,
      body: (() => Buffer | Readable) | undefined,
      size: number | undefined,
      signal: AbortSignal | undefined,
      what: string,
    ): Promise<void> {
      const url = new URL(loc);
      url.searchParams.set("digest", digest);
      const headers: Record<string, string> = { "content-type": "application/octet-stream" };
      if (size !== undefined) headers["content-length"] = String(size);
      const res = await send({ method: "PUT", url, headers, ...(body ? { body } : {}), scopes: push, signal });
      if (res.status !== 201) throw unexpected(res, `${what}: finishing the upload`, await errorDetail(res));
      await res.discard();
      const got = res.headers["docker-content-digest"];
      if (typeof got === "string" && got !== digest) throw new RegistryError("DIGEST_MISMATCH", `${what}: the registry stored ${got}, expected ${digest}`);
    }

    async function uploadSource(src: BlobSource, signal: AbortSignal | undefined): Promise<void> {
      const what = `uploading ${src.digest}`;
      let loc = await startUpload(signal, what);
      if (src.size <= monolithicMax) {
        await finishUpload(loc, src.digest, () => src.open(0, src.size), src.size, signal, what);
        return;
      }
      for (let start = 0; start < src.size; start += chunkSize) {
        throwIfAborted(signal);
        const end = Math.min(src.size, start + chunkSize);
        const res = await send({
          method: "PATCH",
          url: loc,
          headers: { "content-type": "application/octet-stream", "content-range": `${start}-${end - 1}`, "content-length": String(end - start) },
          body: () => src.open(start, end),
          scopes: push,
          signal,
        });
        if (res.status !== 202) throw unexpected(res, `${what}: uploading bytes ${start}-${end - 1}`, await errorDetail(res));
        await res.discard();
        loc = uploadUrl(res.headers.location, what);
      }
      await finishUpload(loc, src.digest, undefined, 0, signal, what);
    }

    const repo: Repository = {
      registry,
      name,
      async getManifest(reference, o = {}) {
        const res = await send({
          method: "GET",
          url: api(`manifests/${reference}`),
          headers: { accept: (o.accept ?? MANIFEST_ACCEPT).join(", ") },
          scopes: pull,
          signal: o.signal,
        });
        if (res.status === 404) {
          const detail = await errorDetail(res);
          throw new RegistryError("IMAGE_NOT_FOUND", `image ${where(reference)} not found in the registry${detail ? ` (${detail})` : ""}`, {
            hint: "check the repository name and tag; private images need `tsbuild login " + registry + "`",
          });
        }
        if (res.status !== 200) throw unexpected(res, `fetching the manifest of ${where(reference)}`, await errorDetail(res));
        const bytes = await res.bytes(MAX_MANIFEST);
        const digest: Digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
        if (isDigest(reference) && digest !== reference) {
          throw new RegistryError("DIGEST_MISMATCH", `the manifest of ${where(reference)} has digest ${digest}`, {
            hint: "the registry served content that does not match the requested digest",
          });
        }
        const header = res.headers["docker-content-digest"];
        if (typeof header === "string" && isDigest(header) && header !== digest) {
          throw new RegistryError("DIGEST_MISMATCH", `the manifest of ${where(reference)} hashes to ${digest}, but the registry says ${header}`);
        }
        const ct = (res.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
        return { bytes, digest, mediaType: ct };
      },
      async putManifest(reference, bytes, mediaType, o = {}) {
        const digest: Digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
        const res = await send({
          method: "PUT",
          url: api(`manifests/${reference}`),
          headers: { "content-type": mediaType },
          body: () => bytes,
          scopes: push,
          signal: o.signal,
        });
        if (res.status !== 201) throw unexpected(res, `uploading the manifest ${where(reference)}`, await errorDetail(res));
        await res.discard();
        return digest;
      },
      async hasBlob(digest, o = {}) {
        const res = await send({ method: "HEAD", url: api(`blobs/${digest}`), scopes: pull, signal: o.signal });
        await res.discard();
        if (res.status === 404) return undefined;
        if (res.status !== 200) throw unexpected(res, `checking for blob ${digest} in ${registry}/${name}`, "");
        const len = Number(res.headers["content-length"]);
        return Number.isFinite(len) ? len : 0;
      },
      getBlob(digest, o = {}) {
        const what = o.what ?? `blob ${digest} of ${registry}/${name}`;
        const signal = o.signal;
        // Bytes so far; after a dropped connection the next attempt asks for the rest with a Range header.
        async function* bytes(): AsyncGenerator<Buffer> {
          let offset = 0;
          for (let attempt = 1; ; attempt++) {
            throwIfAborted(signal);
            try {
              const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
              const res = await send({ method: "GET", url: api(`blobs/${digest}`), headers, scopes: pull, signal });
              if (res.status === 404) {
                await res.discard();
                throw new RegistryError("BLOB_NOT_FOUND", `${what} (${digest}) is missing from the registry`);
              }
              let skip = 0;
              if (res.status === 200)
                skip = offset; // the server ignored the Range: drop what we already have
              else if (res.status !== 206 || offset === 0) throw unexpected(res, `downloading ${what}`, await errorDetail(res));
              for await (const chunk of res.body as AsyncIterable<Buffer>) {
                if (skip > 0) {
                  if (chunk.length <= skip) {
                    skip -= chunk.length;
                    continue;
                  }
                  const rest = chunk.subarray(skip);
                  skip = 0;
                  offset += rest.length;
                  yield rest;
                  continue;
                }
                offset += chunk.length;
                yield chunk;
              }
              if (o.size !== undefined && offset < o.size)
                throw new RegistryError("CONNECTION_DROPPED", `the connection closed after ${offset} of ${o.size} bytes of ${what}`);
              return;
            } catch (e) {
              if (signal?.aborted) throw new AbortError();
              if (!retryable(e) || attempt >= maxAttempts) {
                if (retryable(e))
                  throw new RegistryError("DOWNLOAD_FAILED", `downloading ${what} failed after ${attempt} attempts: ${(e as Error).message}`, { cause: e });
                throw e;
              }
              await sleep(100 * 2 ** (attempt - 1), signal);
            }
          }
        }
        const src = Readable.from(bytes(), { objectMode: false, highWaterMark: 1024 * 1024 });
        const check = verifyingStream({ digest, size: o.size, what });
        src.once("error", (e) => check.destroy(e));
        return src.pipe(check);
      },
      async putBlob(data, o = {}) {
        const signal = o.signal;
        if (Buffer.isBuffer(data)) {
          const digest: Digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
          return repo.putBlob({ digest, size: data.length, open: (s, e) => Readable.from([data.subarray(s, e)]) }, o);
        }
        if (!(data instanceof Readable)) {
          const known = await repo.hasBlob(data.digest, o);
          if (known !== undefined) return { digest: data.digest, size: data.size, uploaded: false };
          for (let attempt = 1; ; attempt++) {
            try {
              await uploadSource(data, signal);
              return { digest: data.digest, size: data.size, uploaded: true };
            } catch (e) {
              if (signal?.aborted) throw new AbortError();
              if (!retryable(e) || attempt >= maxAttempts) throw e;
              await sleep(100 * 2 ** (attempt - 1), signal);
            }
          }
        }
        // A one-shot stream: one PATCH with the whole body (chunked transfer encoding), hashed on the way.
        const what = "uploading a blob stream";
        const loc = await startUpload(signal, what);
        const tap = sha256Tap();
        const feeding = pipeline(data, tap, signal ? { signal } : {});
        feeding.catch(() => undefined);
        let sent = false;
        const res = await send({
          method: "PATCH",
          url: loc,
          headers: { "content-type": "application/octet-stream" },
          body: () => {
            if (sent) throw new RegistryError("UPLOAD_FAILED", `${what}: the registry asked to send the stream again, which a stream cannot do`);
            sent = true;
            return tap;
          },
          scopes: push,
          signal,
        });
        await feeding;
        if (res.status !== 202) throw unexpected(res, what, await errorDetail(res));
        await res.discard();
        const digest: Digest = tap.digest();
        await finishUpload(uploadUrl(res.headers.location, what), digest, undefined, 0, signal, what);
        return { digest, size: tap.bytes(), uploaded: true };
      },
      async mountBlob(digest, from, o = {}) {
        const url = api("blobs/uploads/");
        url.searchParams.set("mount", digest);
        url.searchParams.set("from", from);
        const res = await send({ method: "POST", url, scopes: [...push, repositoryScope(from, ["pull"])], signal: o.signal });
        await res.discard();
        if (res.status === 201) return true;
        if (res.status === 202) {
          // The registry could not mount and opened an upload instead: cancel it, the caller uploads normally.
          const loc = res.headers.location;
          if (loc) {
            const del = await send({ method: "DELETE", url: uploadUrl(loc, "cancelling an upload"), scopes: push, signal: o.signal }).catch(() => undefined);
            await del?.discard();
          }
          return false;
        }
        throw unexpected(res, `mounting ${digest} from ${from} into ${name}`, "");
      },
    };
    return repo;
  }

  return {
    endpoint,
    repository,
    async ping(signal) {
      const res = await send({ method: "GET", url: new URL("/v2/", endpoint.base), scopes: [], signal });
      if (res.status !== 200) throw unexpected(res, `checking the registry API at ${registry}`, await errorDetail(res));
      await res.discard();
    },
    close: () => transport.close(),
  };
}
