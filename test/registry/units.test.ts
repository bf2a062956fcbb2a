// The registry client's pure parts: WWW-Authenticate parsing, endpoints, credential file handling.
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseWwwAuthenticate } from "../../src/registry/www-authenticate.js";
import { insecureRegistries, isInsecure, resolveEndpoint } from "../../src/registry/endpoint.js";
import { dockerConfigPath, lookupCredentials, registryKey, removeCredentials, saveCredentials } from "../../src/registry/credentials.js";
import { parseManifestDocument } from "../../src/registry/media-types.js";
import { registryOf } from "../../src/registry/login.js";
import { parseReference } from "../../src/image/reference.js";
import { tempDir } from "../helpers/cli.js";

describe("WWW-Authenticate", () => {
  it("parses Docker Hub's Bearer challenge", () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/busybox:pull" } },
    ]);
  });
  it("parses Basic, several challenges, escapes and commas in quotes", () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual([{ scheme: "basic", params: { realm: "Registry Realm" } }]);
    expect(parseWwwAuthenticate('Bearer realm="a,b", scope="x:y:pull,push", error="insufficient_scope", Basic realm=plain')).toEqual([
      { scheme: "bearer", params: { realm: "a,b", scope: "x:y:pull,push", error: "insufficient_scope" } },
      { scheme: "basic", params: { realm: "plain" } },
    ]);
    expect(parseWwwAuthenticate('bearer REALM="q\\"uote"')).toEqual([{ scheme: "bearer", params: { realm: 'q"uote' } }]);
    expect(parseWwwAuthenticate("")).toEqual([]);
    expect(parseWwwAuthenticate("  ,, ")).toEqual([]);
  });
});

describe("endpoints", () => {
  it("maps docker.io to registry-1.docker.io over HTTPS, loopback and listed hosts to HTTP", () => {
    expect(resolveEndpoint("docker.io", []).base.href).toBe("https://registry-1.docker.io/");
    expect(resolveEndpoint("ghcr.io", []).base.href).toBe("https://ghcr.io/");
    expect(resolveEndpoint("localhost:5000", []).base.href).toBe("http://localhost:5000/");
    expect(resolveEndpoint("127.0.0.1:5000", []).base.href).toBe("http://127.0.0.1:5000/");
    expect(resolveEndpoint("[::1]:5000", []).base.protocol).toBe("http:");
    expect(resolveEndpoint("reg.lan:5000", ["reg.lan:5000"]).base.protocol).toBe("http:");
    expect(isInsecure("reg.lan:5000", ["reg.lan"])).toBe(true);
    expect(isInsecure("reg.lan:5000", ["other.lan"])).toBe(false);
    expect(insecureRegistries({ TSBUILD_INSECURE_REGISTRIES: "a.lan, b.lan:5000,," }, ["c.lan"])).toEqual(["a.lan", "b.lan:5000", "c.lan"]);
  });
  it("references follow Docker's naming rules", () => {
    expect(parseReference("busybox").name).toBe("docker.io/library/busybox:latest");
    expect(parseReference("localhost:5000/a/b:t").registry).toBe("localhost:5000");
    expect(parseReference("user/img@sha256:" + "a".repeat(64)).name).toBe("docker.io/user/img@sha256:" + "a".repeat(64));
    expect(() => parseReference("team/App")).toThrow(/invalid image reference "team\/App"/);
  });
});

describe("manifest documents", () => {
  it("accepts OCI and Docker schema 2, rejects schema 1 and artifacts", () => {
    const m = { schemaVersion: 2, config: { mediaType: "x", digest: "sha256:" + "a".repeat(64), size: 1 }, layers: [] };
    expect(parseManifestDocument(Buffer.from(JSON.stringify(m)), "application/vnd.docker.distribution.manifest.v2+json", "x").kind).toBe("manifest");
    expect(parseManifestDocument(Buffer.from(JSON.stringify(m)), "application/json", "x").kind).toBe("manifest");
    expect(parseManifestDocument(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), "", "x").kind).toBe("index");
    expect(() =>
      parseManifestDocument(Buffer.from(JSON.stringify({ schemaVersion: 1 })), "application/vnd.docker.distribution.manifest.v1+prettyjws", "old:1"),
    ).toThrow(/schema 1/);
    expect(() => parseManifestDocument(Buffer.from("{}"), "application/vnd.in-toto+json", "x")).toThrow(/not an image manifest/);
    expect(() => parseManifestDocument(Buffer.from("not json"), "", "x")).toThrow(/not valid JSON/);
  });
});

describe("credentials", () => {
  let dir: { path: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    dir = await tempDir("tsbuild-creds-");
  });
  afterAll(async () => dir.cleanup());

  it("finds the config file like docker", () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: "/x" })).toBe("/x/config.json");
    expect(dockerConfigPath({ HOME: "/home/u" })).toBe("/home/u/.docker/config.json");
    expect(dockerConfigPath({ DOCKER_CONFIG: "/x" }, "/auth.json")).toBe("/auth.json");
  });

  it("keys registries like docker", () => {
    expect(registryKey("https://index.docker.io/v1/")).toBe("docker.io");
    expect(registryKey("registry-1.docker.io")).toBe("docker.io");
    expect(registryKey("http://Reg.Example:5000/v2/")).toBe("reg.example:5000");
    expect(registryOf("docker.io")).toBe("docker.io");
    expect(registryOf("localhost:5000")).toBe("localhost:5000");
  });

  it("reads auths (auth or username/password), keeps other keys on save and remove, writes 0600", async () => {
    const file = join(dir.path, "d1", "config.json");
    await mkdir(join(dir.path, "d1"));
    await writeFile(
      file,
      JSON.stringify({
        auths: { "https://index.docker.io/v1/": { auth: Buffer.from("hub:pw:with:colons").toString("base64") }, "other.io": { username: "o", password: "p" } },
        psFormat: "table",
      }),
    );
    expect(await lookupCredentials("docker.io", file)).toEqual({ username: "hub", password: "pw:with:colons" });
    expect(await lookupCredentials("other.io", file)).toEqual({ username: "o", password: "p" });
    expect(await lookupCredentials("nobody.io", file)).toBeUndefined();
    await saveCredentials("docker.io", { username: "new", password: "x" }, file);
    const cfg = JSON.parse(await readFile(file, "utf8")) as { auths: Record<string, unknown>; psFormat: string };
    expect(cfg.psFormat).toBe("table");
    expect(Object.keys(cfg.auths).sort()).toEqual(["https://index.docker.io/v1/", "other.io"]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await removeCredentials("https://other.io", file)).toBe(true);
    expect(await removeCredentials("other.io", file)).toBe(false);
    expect(await lookupCredentials("docker.io", file)).toEqual({ username: "new", password: "x" });
    expect(await lookupCredentials("nothing.io", join(dir.path, "missing.json"))).toBeUndefined();
  });

  it("a malformed config file is a clear error that quotes none of its content", async () => {
    const file = join(dir.path, "bad.json");
    await writeFile(file, '{"auths": {"x": {"auth": "c2VjcmV0"}}, oops');
    const err = await lookupCredentials("x", file).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("is not valid JSON");
    expect((err as Error).message).not.toContain("c2VjcmV0");
  });
});
