// Base-image configs with ill-typed fields: `load` refuses them with an ArchiveError naming the image, the field and
// its type; a bad config already in the store is a StoreError when FROM uses it. Before, these loaded and then
// crashed a build (e.g. `"Env": [1]` → "kv.indexOf is not a function").
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageConfigProblem } from "../../src/image/config-check.js";
import { jsonBytes } from "../../src/image/json.js";
import { MediaType, type Manifest } from "../../src/image/types.js";
import { openContentStore } from "../../src/store/content-store.js";
import { openImageStore } from "../../src/store/image-store.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { craftImageArchive, makeTar, sha256 } from "../helpers/crafted-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

beforeAll(async () => {
  dir = await tempDir("tsbuild-cfgcheck-");
  root = join(dir.path, "store");
});
afterAll(async () => {
  await dir?.cleanup();
});

// A child that reads every field the checks cover.
const CHILD = 'FROM bad:1\nENV X=1\nWORKDIR sub\nLABEL a=b\nEXPOSE 80\nVOLUME /v\nUSER u\nENTRYPOINT ["/e"]\nCMD ["c"]\n';

const cases: [string, Record<string, unknown>, RegExp][] = [
  ["Env with a number and an object", { Env: [1, { a: 2 }] }, /config\.Env\[0\] is a number, not a string/],
  ["Env as a string", { Env: "x" }, /config\.Env is a string, not a list of strings/],
  ["WorkingDir as a number", { WorkingDir: 5 }, /config\.WorkingDir is a number, not a string/],
  ["Cmd as a string", { Cmd: "sh" }, /config\.Cmd is a string, not a list of strings/],
  ["Entrypoint as an object", { Entrypoint: { a: 1 } }, /config\.Entrypoint is an object, not a list of strings/],
  ["Labels as a list", { Labels: ["a"] }, /config\.Labels is a list, not an object/],
  ["Labels with a number value", { Labels: { a: 1 } }, /config\.Labels\["a"\] is a number, not a string/],
  ["ExposedPorts as a string", { ExposedPorts: "80/tcp" }, /config\.ExposedPorts is a string, not an object/],
  ["Volumes as a list", { Volumes: ["/v"] }, /config\.Volumes is a list, not an object/],
  ["User as a number", { User: 0 }, /config\.User is a number, not a string/],
  ["OnBuild with a number", { OnBuild: [1] }, /config\.OnBuild\[0\] is a number, not a string/],
];

describe("ill-typed base image configs", () => {
  for (const [name, runConfig, message] of cases) {
    it(`load refuses ${name}, naming the image and the field`, async () => {
      const file = await craftImageArchive(dir.path, `${name.replace(/\W+/g, "-")}.tar`, "bad:1", runConfig);
      const loaded = await r(["load", "-i", file]);
      expect(loaded.code).toBe(1);
      expect(loaded.stderr).toMatch(/^error: /);
      expect(loaded.stderr).toContain("(bad:1)");
      expect(loaded.stderr).toMatch(message);
      expect(loaded.stderr).toContain("[BAD_CONFIG]");
      expect(loaded.stderr).not.toMatch(/this is a bug in tsbuild/);
      expect((await r(["images"])).stdout).not.toMatch(/^bad\s/m);
    });
  }

  it("Go's null for empty lists and maps is fine", async () => {
    const file = await craftImageArchive(dir.path, "nulls.tar", "nulls:1", {
      Env: null,
      Cmd: null,
      Entrypoint: null,
      Labels: null,
      ExposedPorts: null,
      Volumes: null,
      OnBuild: null,
      WorkingDir: "",
    });
    const loaded = await r(["load", "-i", file]);
    expect(loaded.code, loaded.stderr).toBe(0);
    const p = join(dir.path, "nulls-child");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "Dockerfile"), CHILD.replace("bad:1", "nulls:1"));
    const built = await r(["build", "-q", "-t", "nulls-child:1", p]);
    expect(built.code, built.stderr).toBe(0);
  });

  it("a bad config already in the store is a StoreError when FROM uses it (not a crash)", async () => {
    // Written straight into the store, as an older tsbuild (or a hand edit) could have left it.
    const content = openContentStore(root);
    const images = openImageStore(root);
    const layer = await makeTar([{ name: "etc/hello", data: "hi\n" }]);
    const l = await content.putBytes(layer);
    const cfg = await content.putBytes(
      jsonBytes({ architecture: "amd64", os: "linux", config: { Env: [1, { a: 2 }] }, rootfs: { type: "layers", diff_ids: [sha256(layer)] } }),
    );
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
      layers: [{ mediaType: MediaType.OciLayer, digest: l.digest, size: l.size }],
    };
    const m = await content.putBytes(jsonBytes(manifest));
    await images.set("docker.io/library/bad:1", { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size });
    const p = join(dir.path, "stored-child");
    await mkdir(p, { recursive: true });
    await writeFile(join(p, "Dockerfile"), CHILD);
    const built = await r(["build", "-t", "child:1", p]);
    expect(built.code).toBe(1);
    expect(built.stderr).toMatch(
      /the config of base image bad:1 \(sha256:[a-f0-9]{64}\) is malformed: config\.Env\[0\] is a number, not a string \[BAD_CONFIG\]/,
    );
    expect(built.stderr).not.toMatch(/this is a bug in tsbuild/);
  });

  it("imageConfigProblem: sound configs pass", () => {
    expect(
      imageConfigProblem({
        architecture: "amd64",
        os: "linux",
        config: { Env: ["A=1"], Cmd: ["sh"], Labels: { a: "b" }, ExposedPorts: { "80/tcp": {} }, Healthcheck: { Test: ["NONE"] } },
        rootfs: { type: "layers", diff_ids: [] },
      }),
    ).toBeUndefined();
    expect(imageConfigProblem({ rootfs: { diff_ids: ["nope"] } })).toMatch(/diff_ids\[0\] is not a sha256 digest/);
    expect(imageConfigProblem({ rootfs: { diff_ids: [] }, config: { Healthcheck: { Interval: "30s" } } })).toMatch(/Healthcheck\.Interval is a string/);
  });
});
