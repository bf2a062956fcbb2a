// --build-context NAME=oci-layout://PATH[:TAG][@DIGEST] (buildx): an OCI image layout directory used as an image by
// FROM NAME and COPY --from=NAME — by tag (index.json annotations), by digest, or the only entry; a platform picked
// from an index; its layers verified into the store; clear errors for a missing path, a non-layout, a digest not there.
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeProject } from "../helpers/project.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { exec, requireTool } from "../helpers/tools.js";

let dir: Awaited<ReturnType<typeof tempDir>>;
let root: string;
let layout: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

const project = (name: string, dockerfile: string, files: Record<string, string> = {}) => writeProject(dir.path, name, dockerfile, files);

async function index(dirPath: string): Promise<{ manifests: { digest: string; annotations?: Record<string, string> }[] }> {
  return JSON.parse(await readFile(join(dirPath, "index.json"), "utf8"));
}

beforeAll(async () => {
  dir = await tempDir("build-context-oci-");
  root = join(dir.path, "store");
  await storeWithBusybox(root);
  // The layout a user gets from `tsbuild build -o type=oci,tar=false`: busybox plus one file, tagged lay:1.
  const src = await project("src", "FROM busybox:local\nRUN echo from-layout > /marker\nENV FROM_LAYOUT=yes\n");
  layout = join(dir.path, "layout");
  const b = await r(["build", "-t", "lay:1", "-o", `type=oci,tar=false,dest=${layout}`, src]);
  expect(b.code, b.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("--build-context NAME=oci-layout://", () => {
  it("serves FROM NAME by tag (config, layers and ENV carried over), COPY --from=NAME and RUN --mount from=NAME by digest", async () => {
    const digest = (await index(layout)).manifests[0]?.digest as string;
    const ctx = await project(
      "app1",
      "FROM base\nCOPY --from=other /marker /copied\nRUN --mount=from=other,target=/l cat /marker /copied /l/marker > /both && echo $FROM_LAYOUT >> /both\n",
    );
    const out = join(dir.path, "out1");
    const contexts = ["--build-context", `base=oci-layout://${layout}:1`, "--build-context", `other=oci-layout://${layout}@${digest}`];
    const b = await r(["build", "--progress", "plain", ...contexts, "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "both"), "utf8")).toBe("from-layout\nfrom-layout\nfrom-layout\nyes\n");
    // The layout's layers are in the store now: a rebuild is all cache hits.
    const again = await r(["build", "--progress", "plain", ...contexts, ctx]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr.match(/CACHED/g)?.length).toBe(2);
  });

  it("without a tag: the only image of the layout; with several platforms, the host's from the index", async () => {
    const src = await project("multi", "FROM scratch\nARG TARGETARCH\nCOPY Dockerfile /\nLABEL arch=$TARGETARCH\n");
    const multi = join(dir.path, "layout-multi");
    const b = await r(["build", "--platform", "linux/amd64,linux/arm64", "-o", `type=oci,tar=false,dest=${multi}`, src]);
    expect(b.code, b.stderr).toBe(0);
    const ctx = await project("app2", "FROM base\n");
    const built = await r(["build", "--build-context", `base=oci-layout://${multi}`, "-t", "from-multi:1", ctx]);
    expect(built.code, built.stderr).toBe(0);
    const image = JSON.parse((await r(["inspect", "from-multi:1"])).stdout)[0].Config;
    expect(image.config.Labels).toEqual({ arch: "amd64" });
    // A platform the index lacks is named with what it has.
    const missing = await r(["build", "--platform", "linux/s390x", "--build-context", `base=oci-layout://${multi}`, ctx]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/has no image for linux\/s390x \(it has: linux\/amd64, linux\/arm64\) \[NO_MATCHING_PLATFORM\]/);
  });

  it("a layout written by skopeo (oci: transport) works too", async () => {
    await requireTool("skopeo");
    const copied = join(dir.path, "layout-skopeo");
    await exec("skopeo", ["copy", `oci:${layout}:1`, `oci:${copied}:v2`]);
    const ctx = await project("app3", "FROM base\nRUN cat /marker > /seen\n");
    const out = join(dir.path, "out3");
    const b = await r(["build", "--build-context", `base=oci-layout://${copied}:v2`, "-o", `type=local,dest=${out}`, ctx]);
    expect(b.code, b.stderr).toBe(0);
    expect(await readFile(join(out, "seen"), "utf8")).toBe("from-layout\n");
  });

  it("a missing path, a directory that is no layout, an unknown tag and a digest not in the layout are clear errors", async () => {
    const ctx = await project("app4", "FROM base\n");
    const notLayout = join(dir.path, "not-a-layout");
    await mkdir(notLayout, { recursive: true });
    const cases: [string, RegExp][] = [
      [`base=oci-layout://${join(dir.path, "missing")}`, /--build-context base=oci-layout:\/\/.*missing: .*missing is not a directory \[BAD_FLAG_VALUE\]/],
      [`base=oci-layout://${notLayout}`, /Dockerfile:1:1: OCI layout .*not-a-layout: is not an OCI image layout: it has no oci-layout file \[BAD_LAYOUT\]/],
      [`base=oci-layout://${join(dir.path, "layout-skopeo")}:nope`, /index\.json has no image tagged "nope", and more than one image \[NO_MANIFEST\]/],
      [`base=oci-layout://${layout}@sha256:${"0".repeat(64)}`, /OCI layout .*layout: the image sha256:0+ is not in its blobs \[MISSING_BLOB\]/],
    ];
    // The skopeo layout holds two tags after this copy, so an unknown tag has no single entry to fall back on.
    await exec("skopeo", ["copy", `oci:${layout}:1`, `oci:${join(dir.path, "layout-skopeo")}:v3`]);
    for (const [value, re] of cases) {
      const b = await r(["build", "--build-context", value, ctx]);
      expect(b.code, b.stderr).not.toBe(0);
      expect(b.stderr).toMatch(re);
      expect(b.stderr).not.toMatch(/this is a bug/);
    }
  });

  it("a layer whose bytes do not match its digest is refused, and nothing of it is kept", async () => {
    const broken = join(dir.path, "layout-broken");
    await exec("cp", ["-a", layout, broken]);
    const man = JSON.parse(await readFile(join(broken, "blobs/sha256", ((await index(broken)).manifests[0]?.digest as string).slice(7)), "utf8"));
    const top = man.layers[man.layers.length - 1].digest.slice(7);
    await writeFile(join(broken, "blobs/sha256", top), "not the layer");
    // A fresh store, so the layer is not already there from the layout's own build.
    const fresh = join(dir.path, "store-fresh");
    await storeWithBusybox(fresh);
    const ctx = await project("app5", "FROM base\n");
    const b = await tsbuild(["build", "--build-context", `base=oci-layout://${broken}`, ctx, "--root", fresh]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/layer 2 has digest sha256:[0-9a-f]{64}, but the manifest says sha256:[0-9a-f]{64} \[DIGEST_MISMATCH\]/);
    const config = JSON.parse(await readFile(join(broken, "blobs/sha256", man.config.digest.slice(7)), "utf8"));
    const diffId: string = config.rootfs.diff_ids[config.rootfs.diff_ids.length - 1];
    await expect(stat(join(fresh, "blobs/sha256", diffId.slice(7)))).rejects.toThrow();
  });
});
