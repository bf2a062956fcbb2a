// `tsbuild build --call=...` through the real CLI: outline and targets as text and JSON (nothing built, the store
// never opened), check, a bad method, and the frontend errors a user meets there: a misspelled --target and a FROM
// left empty by an ARG, each with its code, position and hint.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
/** A store path that must never be created: outline and targets only parse and plan. */
let root: string;
let n = 0;
const r = (args: string[]) => tsbuild([...args, "--root", root], { cwd: dir.path });
/** A real build (which opens its store) gets a store of its own, so `root` stays untouched. */
const build = (args: string[]) => tsbuild([...args, "--root", join(dir.path, "build-store")], { cwd: dir.path });

async function project(dockerfile: string): Promise<string> {
  const name = `ctx-${n++}`;
  await mkdir(join(dir.path, name), { recursive: true });
  await writeFile(join(dir.path, name, "Dockerfile"), dockerfile);
  return name;
}

const DOCKERFILE = [
  "# GO_VERSION sets the Go version",
  "ARG GO_VERSION=1.22",
  "# build compiles the app",
  "FROM scratch AS build",
  "ARG GO_VERSION",
  "RUN --mount=type=secret,id=npmrc,required true",
  "# release is what ships",
  "FROM scratch AS release",
  "COPY --from=build /app /app",
  "",
].join("\n");

beforeAll(async () => {
  dir = await tempDir("tsbuild-call-");
  root = join(dir.path, "store");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("build --call", () => {
  it("targets: buildx's table of stages with their descriptions, and BuildKit's JSON", async () => {
    const ctx = await project(DOCKERFILE);
    const text = await r(["build", "--call=targets", ctx]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe("TARGET            DESCRIPTION\nbuild             compiles the app\nrelease (default) is what ships\n");
    const json = await r(["build", "--call", "targets,format=json", ctx]);
    expect(json.code, json.stderr).toBe(0);
    const list = JSON.parse(json.stdout) as { targets: { name: string; default?: boolean; description?: string }[]; sources: string[] };
    expect(list.targets.map((t) => [t.name, t.default ?? false, t.description])).toEqual([
      ["build", false, "compiles the app"],
      ["release", true, "is what ships"],
    ]);
    expect(Buffer.from(list.sources[0] as string, "base64").toString()).toBe(DOCKERFILE);
    expect(existsSync(root)).toBe(false);
  });

  it("outline: the target, its build args with values and descriptions, its secrets; --target and --build-arg apply", async () => {
    const ctx = await project(DOCKERFILE);
    const text = await r(["build", "--call=outline", ctx]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(
      "TARGET:      release\nDESCRIPTION: is what ships\n\n" +
        "BUILD ARG    VALUE   DESCRIPTION\nGO_VERSION   1.22    sets the Go version\n\n" +
        "SECRET   REQUIRED\nnpmrc    true\n\n",
    );
    const json = await r(["build", "--call=outline,format=json", "--target", "build", "--build-arg", "GO_VERSION=1.23", ctx]);
    expect(json.code, json.stderr).toBe(0);
    const o = JSON.parse(json.stdout) as { name: string; args: { name: string; value: string; location: unknown }[]; secrets: unknown[] };
    expect(o.name).toBe("build");
    expect(o.args).toEqual([{ name: "GO_VERSION", value: "1.23", location: { ranges: [{ start: { line: 5 }, end: { line: 5 } }] } }]);
    expect(o.secrets).toEqual([{ name: "npmrc", required: true, location: { ranges: [{ start: { line: 6 }, end: { line: 6 } }] } }]);
    expect(existsSync(root)).toBe(false);
  });

  it("check: the build checks, as --check does, text or JSON", async () => {
    const ctx = await project("FROM scratch as build\n");
    const text = await r(["build", "--call=check", ctx]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("FromAsCasing");
    const json = await r(["build", "--call=check,format=json", ctx]);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as { warnings: { rule: string }[] }).warnings.map((w) => w.rule)).toEqual(["FromAsCasing"]);
  });

  it("an unknown method or field is a usage error naming the value, with a suggestion", async () => {
    const ctx = await project("FROM scratch\n");
    const typo = await r(["build", "--call=outlin", ctx]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('error: --call outlin: unknown method "outlin" [BAD_FLAG_VALUE]');
    expect(typo.stderr).toContain("hint: did you mean outline? (methods: build, check, outline, targets)");
    const field = await r(["build", "--call=outline,format=yaml", ctx]);
    expect(field.code).toBe(2);
    expect(field.stderr).toContain("format takes text or json");
    const help = await tsbuild(["build", "--help"]);
    expect(help.stdout).toMatch(/--call METHOD +build \(default\), check, outline/);
  });

  it("a misspelled --target suggests the stage (outline and build alike)", async () => {
    const ctx = await project(DOCKERFILE);
    for (const run of [() => r(["build", "--call=outline", "--target", "biuld", ctx]), () => build(["build", "--target", "biuld", ctx])]) {
      const res = await run();
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('error: target stage "biuld" could not be found [UNKNOWN_TARGET]');
      expect(res.stderr).toContain("hint: did you mean build? (stages: build, release)");
    }
  });

  it("a FROM left empty by an ARG names the ARG, at file:line:column", async () => {
    const ctx = await project("ARG BASE\nFROM $BASE\n");
    const res = await r(["build", "--call=outline", ctx]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      `error: ${ctx}/Dockerfile:2:6: FROM $BASE: base name is empty because build arg BASE has no value; give it a default (ARG BASE=…) or --build-arg BASE=… [EMPTY_BASE]`,
    );
    expect(res.stderr).toContain("> 2 | FROM $BASE");
    const tagged = await project("ARG BASE\nFROM ${BASE}:1 AS app\n");
    const built = await build(["build", tagged]);
    expect(built.code).toBe(1);
    expect(built.stderr).toContain(`error: ${tagged}/Dockerfile:2:6: FROM \${BASE}:1: base name ":1" is not an image name because build arg BASE has no value`);
    // With the arg given, the outline goes through.
    const given = await r(["build", "--call=outline", "--build-arg", "BASE=busybox", ctx]);
    expect(given.code, given.stderr).toBe(0);
    expect(given.stdout).toBe("BUILD ARG   VALUE     DESCRIPTION\nBASE        busybox   \n\n");
    expect(existsSync(root)).toBe(false);
  });
});
