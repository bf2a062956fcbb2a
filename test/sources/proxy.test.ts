// Proxy choice for http(s) fetches, by Go's net/http rules (which BuildKit's sources follow).
import { describe, expect, it } from "vitest";
import { proxyConfig, proxyFor } from "../../src/sources/proxy.js";

const via = (url: string, cfg: Parameters<typeof proxyFor>[1]) => proxyFor(new URL(url), cfg)?.href;

describe("proxyConfig", () => {
  it("takes the upper-case name, then the lower-case one, from the first environment that sets it", () => {
    expect(proxyConfig({ http_proxy: "http://a:1" })).toEqual({ httpProxy: "http://a:1" });
    expect(proxyConfig({ HTTP_PROXY: "http://u:1", http_proxy: "http://l:1" })).toEqual({ httpProxy: "http://u:1" });
    expect(proxyConfig({ https_proxy: "http://args:1" }, { HTTPS_PROXY: "http://env:1", NO_PROXY: "x" })).toEqual({
      httpsProxy: "http://args:1",
      noProxy: "x",
    });
    expect(proxyConfig({ http_proxy: "" })).toEqual({});
  });
});

describe("proxyFor", () => {
  const cfg = { httpProxy: "http://proxy:3128", httpsProxy: "proxy2:8080" };
  it("uses HTTP_PROXY for http and HTTPS_PROXY for https (a bare host:port is http://)", () => {
    expect(via("http://files.example/x", cfg)).toBe("http://proxy:3128/");
    expect(via("https://files.example/x", cfg)).toBe("http://proxy2:8080/");
    expect(via("https://files.example/x", { httpProxy: "http://proxy:3128" })).toBeUndefined();
  });

  it("never proxies localhost or loopback addresses", () => {
    for (const u of ["http://localhost:8080/", "http://127.0.0.1/", "http://127.9.9.9:1/", "http://[::1]:80/"]) expect(via(u, cfg)).toBeUndefined();
  });

  it("honours NO_PROXY: *, names with their subdomains, .suffix, IPs, CIDRs and ports", () => {
    const np = (noProxy: string, url: string) => via(url, { ...cfg, noProxy });
    expect(np("*", "http://a.example/")).toBeUndefined();
    expect(np("example.com", "http://example.com/")).toBeUndefined();
    expect(np("example.com", "http://sub.example.com/")).toBeUndefined();
    expect(np("example.com", "http://badexample.com/")).toBe("http://proxy:3128/");
    expect(np(".example.com", "http://example.com/")).toBe("http://proxy:3128/");
    expect(np("*.example.com", "http://a.example.com/")).toBeUndefined();
    expect(np("10.0.0.0/8", "http://10.1.2.3/")).toBeUndefined();
    expect(np("10.0.0.0/8", "http://11.1.2.3/")).toBe("http://proxy:3128/");
    expect(np("192.0.2.7", "http://192.0.2.7/")).toBeUndefined();
    expect(np("a.example:8080", "http://a.example:8080/")).toBeUndefined();
    expect(np("a.example:8080", "http://a.example/")).toBe("http://proxy:3128/");
    expect(np(" other , A.Example ", "http://a.example/")).toBeUndefined();
  });

  it("refuses a proxy that is not http(s)", () => {
    expect(() => via("http://a.example/", { httpProxy: "socks5://p:1080" })).toThrow(/only http:\/\/ and https:\/\/ proxies/);
  });
});
