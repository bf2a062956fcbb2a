// A small Bearer token server for docker-registry's `auth: token` (the distribution token spec): issues RS256 JWTs
// signed with a key/cert made by openssl at test time, carrying x5c (the cert) so the registry can verify them
// against its rootcertbundle. Optional Basic credentials; records every request's scopes for assertions.
import { createSign, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { selfSignedCert } from "./self-signed-cert.js";

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Every token request: the scopes asked for and the user (undefined: anonymous). */
  requests: { scopes: string[]; user: string | undefined; service: string | null }[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

export async function startTokenServer(opts: { users?: Record<string, string> } = {}): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), "tsbuild-token-"));
  const { key: keyFile, cert: certFile } = await selfSignedCert(dir, "tsbuild-test-token");
  const key = await readFile(keyFile, "utf8");
  const certDer = Buffer.from((await readFile(certFile, "utf8")).replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  const service = "tsbuild-test-registry";
  const issuer = "tsbuild-test-issuer";
  const requests: TokenServer["requests"] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/token") {
      res.writeHead(404).end();
      return;
    }
    let user: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith("Basic ")) {
      const plain = Buffer.from(authz.slice(6), "base64").toString();
      const i = plain.indexOf(":");
      const [u, p] = [plain.slice(0, i), plain.slice(i + 1)];
      if (opts.users?.[u] !== p) {
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ details: "bad credentials" }));
        return;
      }
      user = u;
    }
    const scopes = url.searchParams.getAll("scope");
    requests.push({ scopes, user, service: url.searchParams.get("service") });
    if (opts.users && user === undefined) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="token"' }).end();
      return;
    }
    // Grant what is asked: repository:NAME:ACTIONS (names may not contain ':', actions are comma-separated).
    const access = scopes
      .flatMap((s) => s.split(" "))
      .map((s) => {
        const m = /^([a-z]+):(.+):([a-z*,]+)$/.exec(s);
        return m ? { type: m[1], name: m[2], actions: (m[3] as string).split(",") } : undefined;
      })
      .filter((a) => a !== undefined);
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [certDer.toString("base64")] };
    const claims = { iss: issuer, sub: user ?? "", aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(12).toString("hex"), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign("RSA-SHA256").update(signingInput).sign(key);
    const token = `${signingInput}.${b64url(sig)}`;
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
