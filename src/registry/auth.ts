// Authentication against one registry for the life of a command: answers 401 challenges with Basic credentials
// or a Bearer token from the challenge's token endpoint (service + scopes), and caches tokens per scope set so
// each scope costs one token request. Credentials only ever go into Authorization headers, never into messages.
import { RegistryError, throwIfAborted } from "../errors.js";
import type { Credentials } from "./credentials.js";
import type { Transport } from "./transport.js";
import { parseWwwAuthenticate, type AuthChallenge } from "./www-authenticate.js";

export interface Authenticator {
  /**
   * The Authorization header to send for these scopes: the cached token or Basic header, or a fresh token when the
   * registry is already known to use Bearer auth (saves a 401 round trip). Undefined until the first challenge.
   */
  header(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined>;
  /** Answer a 401 for these scopes; returns the header to retry with. Throws RegistryError when that is impossible. */
  challenge(wwwAuthenticate: string | undefined, scopes: readonly string[], signal?: AbortSignal): Promise<string>;
  /** Whether credentials were found for the registry (for error messages). */
  hasCredentials(): Promise<boolean>;
}

export interface AuthenticatorOptions {
  registry: string;
  transport: Transport;
  /** Looked up at most once, on the first challenge. */
  credentials: () => Promise<Credentials | undefined>;
}

/** `repository:team/app:pull,push` */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}

/** Tokens are renewed this long before they expire, so a request never goes out with a token about to lapse. */
const EXPIRY_MARGIN_MS = 10_000;
/** What the token spec says to assume when the server gives no expires_in. */
const DEFAULT_TOKEN_LIFETIME_S = 60;

function loginHint(registry: string): string {
  return `run \`tsbuild login ${registry}\` (credentials are read from $DOCKER_CONFIG/config.json or ~/.docker/config.json)`;
}

export function authFailed(registry: string, withCredentials: boolean, detail?: string): RegistryError {
  const what = withCredentials
    ? `authentication to ${registry} failed: the registry rejected the stored credentials`
    : `${registry} requires authentication and no credentials are stored for it`;
  return new RegistryError(withCredentials ? "AUTH_FAILED" : "AUTH_REQUIRED", detail ? `${what} (${detail})` : what, { hint: loginHint(registry) });
}

/** True when `scope` (type:name:actions) asks for nothing beyond what `have` already asks for. */
function covered(scope: string, have: readonly string[]): boolean {
  const split = (s: string) => {
    const last = s.lastIndexOf(":");
    return { resource: s.slice(0, last), actions: new Set(s.slice(last + 1).split(",")) };
  };
  const want = split(scope);
  return have.some((h) => {
    const x = split(h);
    return x.resource === want.resource && [...want.actions].every((a) => x.actions.has(a) || x.actions.has("*"));
  });
}

export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const tokens = new Map<string, { header: string; expiresAt: number }>();
  // Parallel requests for the same scopes share one token request.
  const inflight = new Map<string, Promise<string>>();
  let creds: Promise<Credentials | undefined> | undefined;
  let scheme: { kind: "basic" } | { kind: "bearer"; realm: URL; service: string | undefined } | undefined;
  const getCreds = () => (creds ??= opts.credentials());
  const scopeKey = (scopes: readonly string[]) => [...new Set(scopes)].sort().join(" ");
  let basicHeader: string | undefined;

  async function basic(): Promise<string> {
    const c = await getCreds();
    if (!c) throw authFailed(opts.registry, false);
    basicHeader = `Basic ${Buffer.from(`${c.username}:${c.password}`, "utf8").toString("base64")}`;
    return basicHeader;
  }

  function fetchToken(realm: URL, service: string | undefined, scopes: readonly string[], signal?: AbortSignal): Promise<string> {
    const key = scopeKey(scopes);
    let p = inflight.get(key);
    if (!p) {
      p = requestToken(realm, service, scopes, signal).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  }

  async function requestToken(realm: URL, service: string | undefined, scopes: readonly string[], signal?: AbortSignal): Promise<string> {
    const url = new URL(realm);
    if (service !== undefined) url.searchParams.set("service", service);
    for (const s of [...new Set(scopes)].sort()) url.searchParams.append("scope", s);
    const c = await getCreds();
    const headers: Record<string, string> = { accept: "application/json" };
    if (c) headers["authorization"] = `Basic ${Buffer.from(`${c.username}:${c.password}`, "utf8").toString("base64")}`;
    throwIfAborted(signal);
    const res = await opts.transport.request({ method: "GET", url, headers, signal });
    if (res.status === 401 || res.status === 403) {
      await res.discard();
      throw authFailed(opts.registry, c !== undefined, `the token server ${url.host} answered ${res.status}`);
    }
    if (res.status !== 200) {
      await res.discard();
      throw new RegistryError("TOKEN_ERROR", `the token server ${url.host} for ${opts.registry} answered ${res.status}`);
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(await res.text(1024 * 1024)) as typeof doc;
    } catch {
      throw new RegistryError("TOKEN_ERROR", `the token server ${url.host} for ${opts.registry} sent a response that is not JSON`);
    }
    const token = typeof doc.token === "string" && doc.token !== "" ? doc.token : typeof doc.access_token === "string" ? doc.access_token : undefined;
    if (!token) throw new RegistryError("TOKEN_ERROR", `the token server ${url.host} for ${opts.registry} sent no token`);
    const lifetime = typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    const header = `Bearer ${token}`;
    tokens.set(scopeKey(scopes), { header, expiresAt: Date.now() + lifetime * 1000 - EXPIRY_MARGIN_MS });
    return header;
  }

  return {
    async header(scopes, signal) {
      if (scheme === undefined) return undefined;
      if (scheme.kind === "basic") return basicHeader;
      const t = tokens.get(scopeKey(scopes));
      if (t && t.expiresAt > Date.now()) return t.header;
      return fetchToken(scheme.realm, scheme.service, scopes, signal);
    },
    async challenge(header, scopes, signal) {
      const challenges: AuthChallenge[] = header ? parseWwwAuthenticate(header) : [];
      const bearer = challenges.find((c) => c.scheme === "bearer");
      const basicC = challenges.find((c) => c.scheme === "basic");
      if (bearer) {
        const realm = bearer.params["realm"];
        let realmUrl: URL;
        try {
          realmUrl = new URL(realm ?? "");
        } catch {
          throw new RegistryError(
            "AUTH_UNSUPPORTED",
            `${opts.registry} asks for a Bearer token but names no valid token endpoint (realm ${JSON.stringify(realm ?? "")})`,
          );
        }
        scheme = { kind: "bearer", realm: realmUrl, service: bearer.params["service"] };
        // The challenge may name the scope it wants (e.g. for the catalog); ask for ours and that one.
        const extra = (bearer.params["scope"]?.split(" ") ?? []).filter((s) => s !== "" && !covered(s, scopes));
        const all = [...new Set([...scopes, ...extra])];
        const h = await fetchToken(realmUrl, scheme.service, all, signal);
        if (extra.some((s) => !scopes.includes(s))) tokens.set(scopeKey(scopes), tokens.get(scopeKey(all)) as { header: string; expiresAt: number });
        return h;
      }
      if (basicC) {
        scheme = { kind: "basic" };
        if (basicHeader) {
          // Basic credentials were already sent and refused.
          throw authFailed(opts.registry, true);
        }
        return basic();
      }
      throw new RegistryError(
        "AUTH_UNSUPPORTED",
        `${opts.registry} asks for authentication with an unsupported scheme (${challenges.map((c) => c.scheme).join(", ") || "no WWW-Authenticate challenge"})`,
      );
    },
    async hasCredentials() {
      return (await getCreds()) !== undefined;
    },
  };
}
