// The registry as a build's neighbour: FROM pulls a base that is not in the store, --push publishes the result, and
// --cache-to/--cache-from type=registry give a machine with an empty store a hit for every step.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tsbuild, tempDir } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";

let work: { path: string; cleanup(): Promise<void> };
let reg: RegistryServer;
let project: string;
let n = 0;

async function buildIn(root: string, extra: string[]): Promise<{ meta: Record<string, any>; stderr: string }> {
  const meta = join(work.path, `meta-${++n}.json`);
  const res = await tsbuild([
    "build",
    "--progress",
    "plain",
    "--root",
    root,
    "--metadata-file",
    meta,
    "--build-arg",
    `BASE=${reg.host}/base/busybox:1`,
    ...extra,
    project,
  ]);
  expect(res.code, res.stderr).toBe(0);
  return { meta: JSON.parse(await readFile(meta, "utf8")), stderr: res.stderr };
}

beforeAll(async () => {
  work = await tempDir("tsbuild-regcache-");
  reg = await startRegistry();
  const a = await storeWithBusybox(join(work.path, "store-a"));
  const pushed = await tsbuild(["push", "--root", a, "busybox:local", `${reg.host}/base/busybox:1`]);
  expect(pushed.code, pushed.stderr).toBe(0);
  project = join(work.path, "app");
  await mkdir(project, { recursive: true });
  await writeFile(join(project, "main.txt"), "hello\n");
  await writeFile(
    join(project, "Dockerfile"),
    [
      "ARG BASE",
      "FROM ${BASE} AS builder",
      "COPY main.txt /src/main.txt",
      "RUN tr a-z A-Z < /src/main.txt > /out",
      "FROM ${BASE}",
      "COPY --from=builder /out /app/out",
      "RUN cat /app/out > /app/copy",
      "",
    ].join("\n"),
  );
});

afterAll(async () => {
  await reg?.stop();
  await work?.cleanup();
});

describe("builds with a registry", () => {
  it("pushes the built image and its cache; an empty store pulls the base, hits every step and gets the same image", async () => {
    const a = join(work.path, "store-a");
    const ref = `${reg.host}/team/app:1`;
    const first = await buildIn(a, ["-t", ref, "--push", "--cache-to", `type=registry,ref=${reg.host}/team/app:buildcache,mode=max`]);
    expect(first.stderr).toMatch(new RegExp(`pushed ${reg.host.replace(/[.]/g, "\\.")}/team/app:1@sha256:[0-9a-f]{64}`));
    expect(first.stderr).toMatch(/exported cache to .*buildcache \(\d+ records/);
    const inspected = JSON.parse((await exec("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`])).stdout);
    const base = JSON.parse((await exec("skopeo", ["inspect", "--tls-verify=false", `docker://${reg.host}/base/busybox:1`])).stdout);
    expect(inspected.Layers.length, JSON.stringify([inspected.Layers, base.Layers])).toBe(base.Layers.length + 2);

    const b = join(work.path, "store-b");
    const second = await buildIn(b, ["--cache-from", `type=registry,ref=${reg.host}/team/app:buildcache`]);
    expect(second.meta["tsbuild.cache"].steps.map((s: { cached: boolean }) => s.cached)).toEqual([true, true, true, true]);
    expect(second.meta["containerimage.config.digest"]).toBe(first.meta["containerimage.config.digest"]);
    // The base came from the registry (FROM falls back to a pull when the store lacks the image).
    const images = await tsbuild(["images", "--root", b]);
    expect(images.stdout).toContain("base/busybox");
  });

  it("a cache tag that does not exist yet is a warning, a FROM that cannot be pulled an error naming the image", async () => {
    const c = join(work.path, "store-c");
    const res = await buildIn(c, ["--cache-from", `type=registry,ref=${reg.host}/team/none:cache`]);
    expect(res.stderr).toMatch(/no cache there yet/);
    const bad = await tsbuild(["build", "--root", c, "--build-arg", `BASE=${reg.host}/base/missing:1`, project]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/base image .*base\/missing:1 is not in the local store, and pulling it failed/);
    expect(bad.stderr).toMatch(/Dockerfile:2/);
  });
});
