// Which proxy an http(s) fetch goes through, by the rules of Go's net/http (golang.org/x/net/http/httpproxy), which
// BuildKit's http and git sources follow: HTTP_PROXY for http://, HTTPS_PROXY for https:// (the upper-case name
// first, then the lower-case one), never for localhost or a loopback address, and not for a host NO_PROXY lists
// ("*", a name matching it and its subdomains, ".suffix", an IP, a CIDR, each optionally with :port).
import { isIP } from "node:net";

export interface ProxyConfig {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The proxy settings of `envs`, the first that sets a variable winning (e.g. build args, then the process env). */
export function proxyConfig(...envs: Env[]): ProxyConfig {
  const get = (name: string): string | undefined => {
    for (const env of envs) {
      const v = env[name.toUpperCase()] || env[name.toLowerCase()];
      if (v) return v;
    }
    return undefined;
  };
  const httpProxy = get("http_proxy");
  const httpsProxy = get("https_proxy");
  const noProxy = get("no_proxy");
  return { ...(httpProxy ? { httpProxy } : {}), ...(httpsProxy ? { httpsProxy } : {}), ...(noProxy ? { noProxy } : {}) };
}

/** The proxy to reach `url` through, or undefined to connect directly. A proxy value that is no URL is an Error. */
export function proxyFor(url: URL, cfg: ProxyConfig): URL | undefined {
  const raw = url.protocol === "https:" ? cfg.httpsProxy : url.protocol === "http:" ? cfg.httpProxy : undefined;
  if (!raw) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  if (host === "localhost" || isLoopback(host)) return undefined;
  if (bypassed(host, port, cfg.noProxy ?? "")) return undefined;
  // Go accepts a bare host:port and reads it as http://host:port.
  const proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  if (proxy.protocol !== "http:" && proxy.protocol !== "https:") throw new Error(`proxy ${raw}: only http:// and https:// proxies are supported`);
  return proxy;
}

function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || /^::ffff:127\./.test(host);
  return false;
}

function bypassed(host: string, port: string, noProxy: string): boolean {
  for (let entry of noProxy.split(",").map((e) => e.trim().toLowerCase())) {
    if (entry === "") continue;
    if (entry === "*") return true;
    if (entry.includes("/")) {
      if (inCidr(host, entry)) return true;
      continue;
    }
    let entryPort: string | undefined;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !(isIP(entry) === 6)) {
      entry = m[1] as string;
      entryPort = m[2];
    }
    entry = entry.replace(/^\[|\]$/g, "");
    if (entryPort !== undefined && entryPort !== port) continue;
    if (isIP(entry)) {
      if (entry === host) return true;
      continue;
    }
    // "*.example.com" and ".example.com" match subdomains only; "example.com" also itself.
    if (entry.startsWith("*.")) entry = entry.slice(1);
    if (entry.startsWith(".") ? host.endsWith(entry) : host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function inCidr(host: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split("/") as [string, string];
  const bits = Number(bitsText);
  const a = ipBytes(host);
  const b = ipBytes(net);
  if (!a || !b || a.length !== b.length || !Number.isInteger(bits) || bits < 0 || bits > a.length * 8) return false;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if (((a[i >> 3] as number) & mask) !== ((b[i >> 3] as number) & mask)) return false;
  }
  return true;
}

function ipBytes(ip: string): number[] | undefined {
  if (isIP(ip) === 4) return ip.split(".").map(Number);
  if (isIP(ip) !== 6) return undefined;
  const [head = "", tail = ""] = ip.split("::") as [string, string?];
  const part = (s: string) => (s ? s.split(":") : []);
  const h = part(head);
  const t = part(tail);
  const groups = ip.includes("::") ? [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t] : h;
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}
