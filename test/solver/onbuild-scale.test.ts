// Many ONBUILD triggers stay linear: 50,000 `ONBUILD` lines in a Dockerfile, and 50,000 triggers in a base image's
// config that a child's FROM runs (each config change used to copy the whole config, and each step label searched the
// instruction list: both quadratic, over 120 s here).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { craftImageArchive } from "../helpers/crafted-image.js";

const N = 50_000;
let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

beforeAll(async () => {
  dir = await tempDir("tsbuild-onbuild-");
  root = join(dir.path, "store");
});
afterAll(async () => {
  await dir?.cleanup();
});

async function project(name: string, dockerfile: string): Promise<string> {
  const p = join(dir.path, name);
  await mkdir(p, { recursive: true });
  await writeFile(join(p, "Dockerfile"), dockerfile);
  return p;
}

async function inspect(name: string): Promise<{ config: { OnBuild?: string[]; Labels?: Record<string, string> }; history: unknown[] }> {
  const res = await r(["inspect", name]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout)[0].Config;
}

describe("ONBUILD at scale", () => {
  it(`records ${N.toLocaleString("en")} ONBUILD lines of a Dockerfile in seconds`, async () => {
    const lines = ["FROM scratch", ...Array.from({ length: N }, () => "ONBUILD RUN true"), ""];
    const ctx = await project("parent", lines.join("\n"));
    const t0 = performance.now();
    const res = await r(["build", "-q", "-t", "parent:1", ctx]);
    const ms = performance.now() - t0;
    expect(res.code, res.stderr.slice(0, 2000)).toBe(0);
    console.log(`build with ${N} ONBUILD lines: ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(20_000);
    const cfg = await inspect("parent:1");
    expect(cfg.config.OnBuild).toHaveLength(N);
    expect(cfg.config.OnBuild?.[N - 1]).toBe("RUN true");
    // BuildKit records ONBUILD in the config only, with no history entry.
    expect(cfg.history ?? []).toHaveLength(0);
  }, 60_000);

  it(`runs ${N.toLocaleString("en")} ONBUILD triggers of a base image in seconds`, async () => {
    const triggers = Array.from({ length: N }, (_, i) => `LABEL t${i}=v${i}`);
    const archive = await craftImageArchive(dir.path, "triggers.tar", "triggers:1", { Env: ["PATH=/bin"], OnBuild: triggers });
    const loaded = await r(["load", "-i", archive]);
    expect(loaded.code, loaded.stderr).toBe(0);
    const ctx = await project("child", "FROM triggers:1\nLABEL done=yes\n");
    const t0 = performance.now();
    const res = await r(["build", "-q", "-t", "child:1", ctx]);
    const ms = performance.now() - t0;
    expect(res.code, res.stderr.slice(0, 2000)).toBe(0);
    console.log(`child build running ${N} base-image triggers: ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(20_000);
    const cfg = await inspect("child:1");
    // Triggers ran (their labels are set) and are not inherited further.
    expect(cfg.config.Labels?.[`t${N - 1}`]).toBe(`v${N - 1}`);
    expect(cfg.config.Labels?.done).toBe("yes");
    expect(Object.keys(cfg.config.Labels ?? {})).toHaveLength(N + 1);
    expect(cfg.config.OnBuild).toBeUndefined();
  }, 60_000);
});
