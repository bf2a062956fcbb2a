// A throwaway self-signed certificate made by openssl, for test TLS servers (and their clients' trust).
import { join } from "node:path";
import { exec } from "./tools.js";

/** Writes key.pem and cert.pem into `dir` for subject CN `cn` and, if given, subjectAltName `san` (e.g. "DNS:x"). */
export async function selfSignedCert(dir: string, cn: string, san?: string): Promise<{ key: string; cert: string }> {
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  const ext = san !== undefined ? ["-addext", `subjectAltName=${san}`] : [];
  await exec("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", `/CN=${cn}`, ...ext]);
  return { key, cert };
}
