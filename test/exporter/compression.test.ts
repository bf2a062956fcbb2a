// Export and push compression through the real CLI: zstd OCI layers (archive and layout directory) that skopeo reads,
// compression-level bounds and force-compression against cached gzip and zstd forms, gzip digests stable across
// stores with pigz and with node's zlib, a forced recompression on push, and a zstd push pulled back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tsbuild, tsbuildProcess, tempDir } from "../helpers/cli.js";
import { exec, requireTool } from "../helpers/tools.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";

type Desc = { mediaType: string; digest: string; size: number };
let work: { path: string; cleanup(): Promise<void> };
let ctx: string;
let n = 0;

/** ~3 MB of word soup: compressible, so gzip levels give different sizes. */
function text(bytes: number): string {
  const words = ["alpha", "beta", "gamma", "delta", "layer", "blob", "digest", "tar", "zstd", "gzip", "node", "build"];
  let x = 0x9e3779b9;
  const out: string[] = [];
  let len = 0;
  while (len < bytes) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = `${words[(x >>> 0) % words.length]}${(x >>> 8) % 1000}`;
    out.push(w);
    len += w.length + 1;
  }
  return out.join(" ");
}

async function newStore(): Promise<string> {
  return storeWithBusybox(join(work.path, `store-${++n}`));
}

/** Build ctx into `root` and export it with `-o SPEC`; the exported OCI layout (a directory) is returned. */
async function exportOci(root: string, opts: string, env?: NodeJS.ProcessEnv): Promise<{ dir: string; layers: Desc[] }> {
  const dir = join(work.path, `oci-${++n}`);
  const args = ["build", "-q", "--root", root, "-o", `type=oci,dest=${dir},tar=false${opts}`, ctx];
  const r = env ? await tsbuildProcess(args, { env }) : await tsbuild(args);
  expect(r.code, r.stderr).toBe(0);
  return { dir, layers: await layoutLayers(dir) };
}

async function layoutLayers(dir: string): Promise<Desc[]> {
  const blob = async (d: string) => JSON.parse(await readFile(join(dir, "blobs/sha256", d.slice(7)), "utf8"));
  const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
  const manifest = await blob(index.manifests[0].digest);
  return manifest.layers as Desc[];
}

beforeAll(async () => {
  work = await tempDir("tsbuild-compress-");
  ctx = join(work.path, "ctx");
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, "data.txt"), text(3 << 20));
  await writeFile(join(ctx, "Dockerfile"), "FROM busybox:local\nCOPY data.txt /data.txt\n");
});

afterAll(async () => {
  await work?.cleanup();
});

describe("export compression", () => {
  it("compression=zstd writes OCI tar+zstd layers that skopeo reads and copies", async () => {
    await requireTool("skopeo");
    await requireTool("zstd");
    const root = await newStore();
    const tar = join(work.path, "zstd.tar");
    const r = await tsbuild(["build", "-q", "--root", root, "-o", `type=oci,dest=${tar},name=app:zstd,compression=zstd,compression-level=12`, ctx]);
    expect(r.code, r.stderr).toBe(0);
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", `oci-archive:${tar}:zstd`])).stdout);
    const layers = raw.layers as Desc[];
    expect(layers.length).toBeGreaterThan(0);
    for (const l of layers) expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    const copied = join(work.path, "zstd-dir");
    await exec("skopeo", ["copy", `oci-archive:${tar}:zstd`, `dir:${copied}`]);
    const last = layers[layers.length - 1] as Desc;
    // The copied blob is a zstd stream of a tar holding data.txt with the context's bytes.
    const listing = await exec("sh", ["-c", `zstd -dc < "$1" | tar -tf -`, "sh", join(copied, last.digest.slice(7))]);
    expect(listing.stdout.split("\n")).toContain("data.txt");
    const content = await exec("sh", ["-c", `zstd -dc < "$1" | tar -xOf - data.txt | sha256sum`, "sh", join(copied, last.digest.slice(7))]);
    const want = await exec("sh", ["-c", `sha256sum < "$1"`, "sh", join(ctx, "data.txt")]);
    expect(content.stdout).toBe(want.stdout);
  });

  it("compression-level applies to new blobs; a cached gzip form is reused until force-compression=true", async () => {
    const root = await newStore();
    const def = await exportOci(root, "");
    const cachedLevel1 = await exportOci(root, ",compression-level=1");
    // Same store: the gzip form made at the default level is reused (BuildKit's rule without force-compression).
    expect(cachedLevel1.layers.map((l) => l.digest)).toEqual(def.layers.map((l) => l.digest));
    const forced1 = await exportOci(root, ",compression-level=1,force-compression=true");
    const forced9 = await exportOci(root, ",compression-level=9,force-compression=true");
    const big = (x: { layers: Desc[] }) => x.layers[x.layers.length - 1] as Desc;
    expect(big(forced1).digest).not.toBe(big(def).digest);
    expect(big(forced1).size).toBeGreaterThan(big(forced9).size);
    for (const l of forced1.layers) expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    // A fresh store at level 1 gives the very blob force-compression made: the level, not the history, decides it.
    const fresh1 = await exportOci(await newStore(), ",compression-level=1");
    expect(fresh1.layers.map((l) => l.digest)).toEqual(forced1.layers.map((l) => l.digest));
    // The blobs are valid gzip.
    await exec("gzip", ["-t", join(forced9.dir, "blobs/sha256", big(forced9).digest.slice(7))]);
  });

  it("an OCI layout directory of zstd layers is copied by skopeo from oci: (umoci 0.4.7 has no zstd: not used)", async () => {
    await requireTool("skopeo");
    const { dir, layers } = await exportOci(await newStore(), ",name=app:z,compression=zstd");
    for (const l of layers) expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    const copied = join(work.path, `oci-copied-${++n}`);
    await exec("skopeo", ["copy", `oci:${dir}:z`, `dir:${copied}`]);
    const last = layers[layers.length - 1] as Desc;
    // skopeo verified each blob's digest while copying; zstd -t checks the frames themselves.
    await exec("zstd", ["-q", "-t", join(copied, last.digest.slice(7))]);
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", `oci:${dir}:z`])).stdout);
    expect((raw.layers as Desc[]).map((l) => l.digest)).toEqual(layers.map((l) => l.digest));
  });

  it("zstd: a cached form is reused at another level until force-compression=true; a cached gzip form is never used", async () => {
    await requireTool("zstd");
    const root = await newStore();
    const gz = await exportOci(root, "");
    const z3 = await exportOci(root, ",compression=zstd");
    const big = (x: { layers: Desc[] }) => x.layers[x.layers.length - 1] as Desc;
    expect(big(z3).mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    expect(big(z3).digest).not.toBe(big(gz).digest);
    const cached19 = await exportOci(root, ",compression=zstd,compression-level=19");
    expect(big(cached19).digest).toBe(big(z3).digest);
    const forced19 = await exportOci(root, ",compression=zstd,compression-level=19,force-compression=true");
    expect(big(forced19).digest).not.toBe(big(z3).digest);
    expect(big(forced19).size).toBeLessThan(big(z3).size);
    // The recompressed form replaced the cached one: the next export without force reuses level 19's blob.
    expect(big(await exportOci(root, ",compression=zstd")).digest).toBe(big(forced19).digest);
    // And the gzip form is still its own, untouched.
    expect(big(await exportOci(root, "")).digest).toBe(big(gz).digest);
  });

  it("compression-level bounds: gzip 0 and 9, zstd 1 export; gzip 10 and -1, zstd 0 and 23, a word are usage errors", async () => {
    const root = await newStore();
    const g0 = await exportOci(root, ",compression-level=0,force-compression=true");
    const g9 = await exportOci(root, ",compression-level=9,force-compression=true");
    const z1 = await exportOci(root, ",compression=zstd,compression-level=1");
    const big = (x: { dir: string; layers: Desc[] }) => join(x.dir, "blobs/sha256", (x.layers[x.layers.length - 1] as Desc).digest.slice(7));
    await exec("gzip", ["-t", big(g0)]);
    await exec("gzip", ["-t", big(g9)]);
    await exec("zstd", ["-q", "-t", big(z1)]);
    // Level 0 only stores: the blob is bigger than the 3 MiB of text it holds.
    expect((g0.layers[g0.layers.length - 1] as Desc).size).toBeGreaterThan(3 << 20);
    for (const [spec, msg] of [
      ["compression-level=10", "10 is not a gzip level"],
      ["compression-level=-1", "-1 is not a gzip level"],
      ["compression=zstd,compression-level=0", "0 is not a zstd level"],
      ["compression=zstd,compression-level=23", "23 is not a zstd level"],
      ["compression-level=best", "compression-level: not a whole number"],
    ] as const) {
      const r = await tsbuild(["build", "-q", "--root", root, "-o", `type=oci,dest=${join(work.path, "bad.tar")},${spec}`, ctx]);
      expect(r.code, spec).not.toBe(0);
      expect(r.stderr, spec).toContain(msg);
      expect(r.stderr, spec).not.toMatch(/this is a bug|\n\s+at /);
    }
  });

  it("gzip digests are the same across stores, with pigz and with node's zlib (TSBUILD_NO_PIGZ=1)", async () => {
    await requireTool("pigz");
    const withPigz = [await exportOci(await newStore(), "", process.env), await exportOci(await newStore(), "", process.env)];
    const noPigz = { ...process.env, TSBUILD_NO_PIGZ: "1" };
    const withZlib = [await exportOci(await newStore(), "", noPigz), await exportOci(await newStore(), "", noPigz)];
    const digests = (x: { layers: Desc[] }) => x.layers.map((l) => l.digest);
    expect(digests(withPigz[1]!)).toEqual(digests(withPigz[0]!));
    expect(digests(withZlib[1]!)).toEqual(digests(withZlib[0]!));
    // The two paths really differ (pigz's blocks vs zlib's members): the switch took effect.
    expect(digests(withPigz[0]!)).not.toEqual(digests(withZlib[0]!));
    // Both are real gzip streams of the same tar (zlib's as one member per 4 MiB): gunzip gives the diff_id's bytes.
    for (const x of [withPigz[0]!, withZlib[0]!]) {
      const l = x.layers[x.layers.length - 1] as Desc;
      const sum = await exec("sh", ["-c", `gzip -dc < "$1" | sha256sum`, "sh", join(x.dir, "blobs/sha256", l.digest.slice(7))]);
      const other = (x === withPigz[0] ? withZlib[0] : withPigz[0])!;
      const o = other.layers[other.layers.length - 1] as Desc;
      const sum2 = await exec("sh", ["-c", `gzip -dc < "$1" | sha256sum`, "sh", join(other.dir, "blobs/sha256", o.digest.slice(7))]);
      expect(sum.stdout).toBe(sum2.stdout);
    }
  });
});

describe("push compression", () => {
  let reg: RegistryServer;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("a second --push reuses the registry's gzip layer at another level; force-compression=true recompresses it", async () => {
    const ref = `${reg.host}/team/force:1`;
    const root = await newStore();
    const layersOf = async () =>
      (JSON.parse((await exec("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`])).stdout).layers as Desc[]).map((l) => l.digest);
    const push = async (spec: string) => {
      const r = await tsbuild(["build", "-q", "--root", root, "-t", ref, "--push", "-o", `type=image${spec}`, ctx]);
      expect(r.code, r.stderr).toBe(0);
      return layersOf();
    };
    const first = await push("");
    expect(await push(",compression-level=1")).toEqual(first);
    const forced = await push(",compression-level=1,force-compression=true");
    expect(forced.at(-1)).not.toBe(first.at(-1));
    expect(forced.length).toBe(first.length);
  });

  it("--push with -o type=image,compression=zstd pushes zstd layers; a new store pulls them back", async () => {
    await requireTool("skopeo");
    const ref = `${reg.host}/team/zstd:1`;
    const root = await newStore();
    const r = await tsbuild(["build", "-q", "--root", root, "-t", ref, "--push", "-o", "type=image,compression=zstd", ctx]);
    expect(r.code, r.stderr).toBe(0);
    const raw = JSON.parse((await exec("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`])).stdout);
    for (const l of raw.layers as Desc[]) expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    const other = join(work.path, "pulled");
    const pulled = await tsbuild(["pull", "--root", other, ref]);
    expect(pulled.code, pulled.stderr).toBe(0);
    const out = join(work.path, "pulled-fs");
    const dockerfile = join(work.path, "pull-ctx");
    await mkdir(dockerfile, { recursive: true });
    await writeFile(join(dockerfile, "Dockerfile"), `FROM ${ref}\n`);
    const ex = await tsbuild(["build", "-q", "--root", other, "-o", `type=local,dest=${out}`, dockerfile]);
    expect(ex.code, ex.stderr).toBe(0);
    expect(await readFile(join(out, "data.txt"), "utf8")).toBe(await readFile(join(ctx, "data.txt"), "utf8"));
    expect((await readdir(out)).length).toBeGreaterThan(1);
  });
});
