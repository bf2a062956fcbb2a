// `--platform linux/amd64,linux/arm64` through the CLI: one solve where the $BUILDPLATFORM stage runs once for both
// platforms (counted in the metadata file), RUN under QEMU for arm64, an OCI image index in the store, in
// `-o type=oci` and pushed to a local docker-registry (checked with skopeo), `type=local` per-platform directories,
// `type=docker` refused, progress naming each step's platform, and a cache export that an empty store hits fully.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tsbuild, tempDir } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { ensureBinfmt, storeWithMultiBusybox } from "../helpers/platforms.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let reg: RegistryServer;
let ctx: string;
const r = (args: string[], at = root) => tsbuild([...args, "--root", at]);
const PLATFORMS = "linux/amd64,linux/arm64";

const DOCKERFILE = [
  "FROM --platform=$BUILDPLATFORM busybox:multi AS build",
  "RUN uname -m > /built-on && echo compiled > /out",
  "FROM busybox:multi",
  "ARG TARGETPLATFORM",
  "COPY --from=build /out /built-on /",
  'RUN uname -m > /arch && echo "$TARGETPLATFORM" > /target',
  "",
].join("\n");

interface Metadata {
  "containerimage.digest": string;
  "containerimage.descriptor": { mediaType: string };
  "containerimage.config.digest"?: string;
  "tsbuild.cache": { hits: number; misses: number; steps: { name: string; cached: boolean; platform?: string; shared?: boolean }[] };
  "tsbuild.platforms": { platform: string; "containerimage.config.digest": string }[];
}

beforeAll(async () => {
  await ensureBinfmt("aarch64");
  dir = await tempDir("tsbuild-multiplat-");
  root = join(dir.path, "store");
  await storeWithMultiBusybox(root);
  ctx = join(dir.path, "ctx");
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, "Dockerfile"), DOCKERFILE);
  reg = await startRegistry();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  await dir?.cleanup();
});

describe("a two-platform build", () => {
  let meta: Metadata;
  let stderr: string;

  beforeAll(async () => {
    const out = join(dir.path, "local-out");
    const res = await r([
      "build",
      "--progress",
      "plain",
      "--platform",
      PLATFORMS,
      "-t",
      "app:multi",
      "--metadata-file",
      join(dir.path, "meta.json"),
      "-o",
      `type=local,dest=${out}`,
      "-o",
      `type=oci,dest=${join(dir.path, "oci-out")},tar=false`,
      "--cache-to",
      `type=local,dest=${join(dir.path, "cache")},mode=max`,
      ctx,
    ]);
    expect(res.code, res.stderr).toBe(0);
    stderr = res.stderr;
    meta = JSON.parse(await readFile(join(dir.path, "meta.json"), "utf8")) as Metadata;
  }, 120_000);

  it("runs the $BUILDPLATFORM stage once for both platforms, and each platform's own steps once each", () => {
    const steps = meta["tsbuild.cache"].steps;
    const buildRun = steps.filter((s) => s.name.includes(" build 2/2] RUN uname -m > /built-on"));
    expect(buildRun.map((s) => s.platform).sort()).toEqual(["linux/amd64", "linux/arm64"]);
    // Exactly one of them executed; the other platform's build waited for it and took its record.
    expect(buildRun.filter((s) => !s.shared && !s.cached)).toHaveLength(1);
    expect(buildRun.filter((s) => s.shared)).toHaveLength(1);
    const finalRun = steps.filter((s) => s.name.includes("RUN uname -m > /arch"));
    expect(finalRun.map((s) => [s.platform, s.cached, s.shared ?? false]).sort()).toEqual([
      ["linux/amd64", false, false],
      ["linux/arm64", false, false],
    ]);
  });

  it("progress events of the two platforms never share a node id", async () => {
    const res = await r(["build", "--progress", "json", "--platform", PLATFORMS, ctx]);
    expect(res.code, res.stderr).toBe(0);
    const starts = res.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { kind: string; node?: string; name?: string })
      .filter((e) => e.kind === "step-start");
    const names = new Map<string, string>();
    for (const e of starts) {
      expect(names.get(e.node as string) ?? e.name, `node ${e.node}`).toBe(e.name);
      names.set(e.node as string, e.name as string);
    }
    expect([...names.values()].filter((n) => n.startsWith("[linux/arm64 "))).not.toHaveLength(0);
    expect([...names.values()].filter((n) => n.startsWith("[linux/amd64 "))).not.toHaveLength(0);
  });

  it("progress names the platform of each step, as buildx does", () => {
    expect(stderr).toContain("[linux/arm64 build 2/2] RUN uname -m > /built-on");
    // Steps numbered as BuildKit counts them: FROM and the filesystem steps (the ARG is folded).
    expect(stderr).toContain("[linux/amd64 stage-1 3/3] RUN uname -m > /arch");
    expect(stderr).toContain("[linux/arm64 stage-1 3/3] RUN uname -m > /arch");
  });

  it("type=local writes linux_amd64/ and linux_arm64/, each with its own RUN result and the shared stage's output", async () => {
    const out = join(dir.path, "local-out");
    const read = (p: string) => readFile(join(out, p), "utf8").then((s) => s.trim());
    expect(await read("linux_amd64/arch")).toBe("x86_64");
    expect(await read("linux_arm64/arch")).toBe("aarch64");
    expect(await read("linux_amd64/target")).toBe("linux/amd64");
    expect(await read("linux_arm64/target")).toBe("linux/arm64");
    for (const p of ["linux_amd64", "linux_arm64"]) {
      expect(await read(`${p}/built-on`)).toBe("x86_64");
      expect(await read(`${p}/out`)).toBe("compiled");
    }
  });

  it("the store and type=oci hold an image index with one manifest per platform (platform fields set)", async () => {
    expect(meta["containerimage.descriptor"].mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(meta["containerimage.config.digest"]).toBeUndefined();
    expect(meta["tsbuild.platforms"].map((p) => p.platform)).toEqual(["linux/amd64", "linux/arm64"]);
    const images = JSON.parse(
      (await r(["images", "--format", "json"])).stdout
        .trim()
        .split("\n")
        .find((l) => l.includes('"app"')) as string,
    );
    expect(images.Platforms).toBe("linux/amd64,linux/arm64");
    const arm = JSON.parse((await r(["inspect", "--platform", "linux/arm64", "app:multi"])).stdout)[0];
    expect(arm.Architecture).toBe("arm64");
    expect(arm.Id).toBe(meta["tsbuild.platforms"][1]?.["containerimage.config.digest"]);

    const oci = join(dir.path, "oci-out");
    const top = JSON.parse(await readFile(join(oci, "index.json"), "utf8"));
    expect(top.manifests).toHaveLength(1);
    expect(top.manifests[0].mediaType).toBe("application/vnd.oci.image.index.v1+json");
    const index = JSON.parse(await readFile(join(oci, "blobs/sha256", top.manifests[0].digest.slice(7)), "utf8"));
    expect(index.manifests.map((m: { platform: unknown }) => m.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ]);
    // skopeo reads the arm64 image out of the layout.
    const { stdout } = await exec("skopeo", ["inspect", "--override-arch", "arm64", `oci:${oci}`]);
    expect(JSON.parse(stdout).Architecture).toBe("arm64");
  });

  it("type=docker with several platforms is a clear error before anything is built", async () => {
    const res = await r(["build", "--platform", PLATFORMS, "-o", `type=docker,dest=${join(dir.path, "x.tar")}`, ctx]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("MULTI_PLATFORM_OUTPUT");
    expect(res.stderr).toContain("--platform");
    expect(res.stderr).not.toContain("RUN uname");
  });

  it("--push pushes the index and both manifests; skopeo sees an index and copies the arm64 image; pull gets each platform back", async () => {
    const ref = `${reg.host}/team/app:multi`;
    const res = await r(["build", "--platform", PLATFORMS, "--push", "-t", ref, ctx]);
    expect(res.code, res.stderr).toBe(0);
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`])).stdout);
    expect(raw.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(raw.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(["amd64", "arm64"]);
    const copied = join(dir.path, "copied-arm64");
    await exec("skopeo", ["copy", "--override-arch", "arm64", "--src-tls-verify=false", `docker://${ref}`, `oci:${copied}:x`]);
    const { stdout } = await exec("skopeo", ["inspect", `oci:${copied}:x`]);
    expect(JSON.parse(stdout).Architecture).toBe("arm64");

    for (const [platform, arch] of [
      ["linux/amd64", "amd64"],
      ["linux/arm64", "arm64"],
    ] as const) {
      const empty = join(dir.path, `pull-${arch}`);
      const pulled = await r(["pull", "--platform", platform, ref], empty);
      expect(pulled.code, pulled.stderr).toBe(0);
      const info = JSON.parse((await r(["inspect", "--platform", platform, ref], empty)).stdout)[0];
      expect(info.Architecture).toBe(arch);
    }
  }, 120_000);

  it("a two-platform build FROM a registry index pulls each platform's image (into an empty store)", async () => {
    const ref = `${reg.host}/team/app:multi`;
    const c = join(dir.path, "from-registry");
    await mkdir(c, { recursive: true });
    await writeFile(join(c, "Dockerfile"), `FROM ${ref}\nRUN uname -m > /again\n`);
    const out = join(dir.path, "from-registry-out");
    const res = await r(["build", "--platform", PLATFORMS, "-o", `type=local,dest=${out}`, c], join(dir.path, "store-empty"));
    expect(res.code, res.stderr).toBe(0);
    expect((await readFile(join(out, "linux_amd64/again"), "utf8")).trim()).toBe("x86_64");
    expect((await readFile(join(out, "linux_arm64/again"), "utf8")).trim()).toBe("aarch64");
    expect((await readFile(join(out, "linux_arm64/arch"), "utf8")).trim()).toBe("aarch64");
  }, 120_000);

  it("the exported cache carries both platforms: an empty store hits every step of every platform", async () => {
    const fresh = join(dir.path, "store-fresh");
    await storeWithMultiBusybox(fresh);
    const res = await r(
      ["build", "--platform", PLATFORMS, "--metadata-file", join(dir.path, "meta2.json"), "--cache-from", `type=local,src=${join(dir.path, "cache")}`, ctx],
      fresh,
    );
    expect(res.code, res.stderr).toBe(0);
    const m2 = JSON.parse(await readFile(join(dir.path, "meta2.json"), "utf8")) as Metadata;
    expect(m2["tsbuild.cache"].misses).toBe(0);
    expect(m2["tsbuild.cache"].hits).toBe(meta["tsbuild.cache"].steps.length);
    // Same images as the first build: the index digest is reproduced.
    expect(m2["containerimage.digest"]).toBe(meta["containerimage.digest"]);
  }, 120_000);
});

describe("cache keys and the platform", () => {
  it("an amd64 build's steps are hits in a later two-platform build (the key has no target platform where it does not matter)", async () => {
    const c = join(dir.path, "keys");
    await mkdir(c, { recursive: true });
    await writeFile(join(c, "Dockerfile"), "FROM busybox:multi\nRUN echo one > /one\nRUN uname -m > /arch\n");
    const single = await r(["build", "--platform", "linux/amd64", c]);
    expect(single.code, single.stderr).toBe(0);
    const meta = join(dir.path, "keys-meta.json");
    const both = await r(["build", "--platform", PLATFORMS, "--metadata-file", meta, c]);
    expect(both.code, both.stderr).toBe(0);
    const steps = (JSON.parse(await readFile(meta, "utf8")) as Metadata)["tsbuild.cache"].steps;
    expect(steps.filter((s) => s.platform === "linux/amd64").every((s) => s.cached)).toBe(true);
    expect(steps.filter((s) => s.platform === "linux/arm64").some((s) => s.cached)).toBe(false);
  });

  it("a $BUILDPLATFORM stage that declares a TARGET* arg runs once per platform (the arg is in its key)", async () => {
    const c = join(dir.path, "targetarg");
    await mkdir(c, { recursive: true });
    await writeFile(
      join(c, "Dockerfile"),
      'FROM --platform=$BUILDPLATFORM busybox:multi AS build\nARG TARGETARCH\nRUN echo "for $TARGETARCH on $(uname -m)" > /out\nFROM busybox:multi\nCOPY --from=build /out /\n',
    );
    const meta = join(dir.path, "targetarg-meta.json");
    const out = join(dir.path, "targetarg-out");
    const res = await r(["build", "--platform", PLATFORMS, "--metadata-file", meta, "-o", `type=local,dest=${out}`, c]);
    expect(res.code, res.stderr).toBe(0);
    const runs = (JSON.parse(await readFile(meta, "utf8")) as Metadata)["tsbuild.cache"].steps.filter((s) => s.name.includes("RUN echo"));
    expect(runs.filter((s) => !s.shared && !s.cached)).toHaveLength(2);
    expect((await readFile(join(out, "linux_amd64/out"), "utf8")).trim()).toBe("for amd64 on x86_64");
    expect((await readFile(join(out, "linux_arm64/out"), "utf8")).trim()).toBe("for arm64 on x86_64");
  });

  it("history and save take --platform", async () => {
    const h = await r(["history", "--platform", "linux/arm64", "--no-trunc", "app:multi"]);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toContain("uname -m > /arch");
    const tar = join(dir.path, "app-arm64.tar");
    const s = await r(["save", "--platform", "linux/arm64", "-o", tar, "app:multi"]);
    expect(s.code, s.stderr).toBe(0);
    const { stdout } = await exec("skopeo", ["inspect", `docker-archive:${tar}`]);
    expect(JSON.parse(stdout).Architecture).toBe("arm64");
  });
});
