// ARG scoping end to end: global ARGs in FROM, re-declaration in a stage, --build-arg, predefined ARGs, ARG in RUN.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { tsbuild, tempDir } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { hostPlatform } from "../../src/image/platform.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

async function build(dockerfile: string, args: string[] = []) {
  const p = join(dir.path, `proj-${Math.random().toString(36).slice(2)}`);
  await mkdir(p, { recursive: true });
  await writeFile(join(p, "Dockerfile"), dockerfile);
  const out = join(p, "out");
  const res = await r(["build", "--progress", "plain", "-t", "args:test", "-o", `type=local,dest=${out}`, ...args, p]);
  expect(res.code, res.stderr).toBe(0);
  const env: string[] = JSON.parse((await r(["inspect", "args:test"])).stdout)[0].Config.config.Env;
  return { out, stderr: res.stderr, env, read: (f: string) => readFile(join(out, f), "utf8") };
}

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  expect((await r(["load", "-i", await makeBusyboxArchive(dir.path)])).code).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("ARG", () => {
  it("global ARGs work in FROM but need re-declaring inside a stage", async () => {
    const b = await build("ARG IMG=busybox:local\nARG G=global\nFROM $IMG\nENV BEFORE=x${G}x\nARG G\nENV AFTER=${G}\n");
    expect(b.env).toContain("BEFORE=xx");
    expect(b.env).toContain("AFTER=global");
  });

  it("--build-arg overrides defaults, ENV wins over ARG, and ARG values reach RUN but not the image config", async () => {
    const b = await build('FROM busybox:local\nARG A=default\nARG B=b\nENV B=from-env\nRUN echo "$A $B" > /seen\n', ["--build-arg", "A=cli"]);
    expect(await b.read("seen")).toBe("cli from-env\n");
    expect(b.env.some((e) => e.startsWith("A="))).toBe(false);
  });

  it("predefined platform ARGs are set once declared", async () => {
    const b = await build("FROM busybox:local\nARG TARGETPLATFORM\nARG TARGETARCH\nRUN echo $TARGETPLATFORM $TARGETARCH > /p\n");
    const { os, architecture } = hostPlatform();
    expect(await b.read("p")).toBe(`${os}/${architecture} ${architecture}\n`);
  });

  it("an unused --build-arg is reported as a warning", async () => {
    const b = await build("FROM busybox:local\nARG USED=1\nENV U=$USED\n", ["--build-arg", "USED=2", "--build-arg", "NOPE=3"]);
    expect(b.stderr).toMatch(/WARNING UnusedBuildArg: build arg NOPE was not consumed/);
    expect(b.stderr).not.toMatch(/build arg USED/);
    expect(b.env).toContain("U=2");
  });

  it("proxy build args reach RUN without an ARG line", async () => {
    const b = await build("FROM busybox:local\nRUN echo $HTTP_PROXY > /proxy\n", ["--build-arg", "HTTP_PROXY=http://127.0.0.1:3128"]);
    expect(await b.read("proxy")).toBe("http://127.0.0.1:3128\n");
    expect(b.stderr).not.toMatch(/UnusedBuildArg/);
  });

  it("ONBUILD triggers of a base image run right after FROM", async () => {
    await build("FROM busybox:local\nONBUILD RUN echo triggered > /onbuild\n", []);
    await r(["tag", "args:test", "onbuild:base"]);
    const b = await build("FROM onbuild:base\nRUN cat /onbuild > /copy\n");
    expect(await b.read("copy")).toBe("triggered\n");
  });
});
