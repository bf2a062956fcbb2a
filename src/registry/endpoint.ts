// Where a registry's API lives: docker.io is served by registry-1.docker.io; HTTPS unless the host is loopback
// (as Docker does) or listed as insecure (--insecure-registry, $TSBUILD_INSECURE_REGISTRIES).

export interface RegistryEndpoint {
  /** The registry as named in image references ("docker.io", "127.0.0.1:5000"); credentials are keyed by it. */
  registry: string;
  /** Base URL of the API, without /v2/: "https://registry-1.docker.io". */
  base: URL;
}

/** Hosts from $TSBUILD_INSECURE_REGISTRIES (comma-separated) plus the given ones. */
export function insecureRegistries(env: NodeJS.ProcessEnv, extra: readonly string[] = []): string[] {
  const fromEnv = (env["TSBUILD_INSECURE_REGISTRIES"] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return [...new Set([...fromEnv, ...extra.map((s) => s.trim()).filter((s) => s !== "")])];
}

function hostOnly(registry: string): string {
  if (registry.startsWith("[")) return registry.slice(1, registry.indexOf("]"));
  const colon = registry.lastIndexOf(":");
  return colon >= 0 ? registry.slice(0, colon) : registry;
}

export function isLoopback(registry: string): boolean {
  const h = hostOnly(registry).toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** True when `registry` is spoken to over plain HTTP: loopback, or listed (as host:port, or as host for any port). */
export function isInsecure(registry: string, insecure: readonly string[]): boolean {
  if (isLoopback(registry)) return true;
  const r = registry.toLowerCase();
  return insecure.some((h) => {
    const x = h
      .toLowerCase()
      .replace(/^[a-z]+:\/\//, "")
      .replace(/\/.*$/, "");
    return x === r || x === hostOnly(r);
  });
}

export function resolveEndpoint(registry: string, insecure: readonly string[]): RegistryEndpoint {
  const apiHost = registry === "docker.io" ? "registry-1.docker.io" : registry;
  const scheme = isInsecure(registry, insecure) ? "http" : "https";
  return { registry, base: new URL(`${scheme}://${apiHost}`) };
}
