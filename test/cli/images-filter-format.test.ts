// `tsbuild images` as CI scripts call `docker images`: a repository argument, --filter (dangling, reference, label,
// before, since), --format (table, json, Go templates), -q, --digests, --no-trunc; and history/inspect --format.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[], env?: NodeJS.ProcessEnv) => tsbuild([...args, "--root", root], env ? { env: { ...process.env, ...env } } : {});
const ids: Record<string, string> = {};

async function build(tag: string, dockerfile: string, epoch: number): Promise<void> {
  const ctx = join(dir.path, tag.replace(/[:/]/g, "_"));
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  const res = await r(["build", "-q", "-t", tag, ctx], { SOURCE_DATE_EPOCH: String(epoch) });
  expect(res.code, res.stderr).toBe(0);
  ids[tag] = res.stdout.trim();
}

const lines = (s: string) => s.split("\n").filter(Boolean);

beforeAll(async () => {
  dir = await tempDir("tsbuild-images-");
  root = join(dir.path, "store");
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
  // Three images, oldest first: created 2020, 2021, 2022 (busybox:local was made just now).
  await build("app:1", "FROM busybox:local\nLABEL tier=web version=1\n", 1_600_000_000);
  await build("app:2", "FROM busybox:local\nLABEL tier=web version=2\n", 1_630_000_000);
  await build("tools/cli:edge", "FROM busybox:local\nLABEL tier=tool\n", 1_660_000_000);
  expect((await r(["tag", "app:2", "app:latest"])).code).toBe(0);
}, 120_000);
afterAll(async () => {
  await dir?.cleanup();
});

const repoTags = async (...args: string[]) => {
  const res = await r(["images", ...args, "--format", "{{.Repository}}:{{.Tag}}"]);
  expect(res.code, res.stderr).toBe(0);
  return lines(res.stdout);
};

describe("images: repository argument and filters", () => {
  it("lists newest first; a repository argument matches every tag of it, or one tag, or a pattern", async () => {
    expect(await repoTags()).toEqual(["busybox:local", "tools/cli:edge", "app:2", "app:latest", "app:1"]);
    expect(await repoTags("app")).toEqual(["app:2", "app:latest", "app:1"]);
    expect(await repoTags("app:1")).toEqual(["app:1"]);
    expect(await repoTags("app:l*")).toEqual(["app:latest"]);
    expect(await repoTags("busy*")).toEqual(["busybox:local"]);
    expect(await repoTags("tools/*")).toEqual(["tools/cli:edge"]);
    expect(await repoTags("*")).toEqual(["busybox:local", "app:2", "app:latest", "app:1"]); // * never matches '/'
    expect(await repoTags("nothing")).toEqual([]);
  });

  it("--filter reference (any of several), label (all of several), dangling, before, since", async () => {
    expect(await repoTags("--filter", "reference=app:1", "--filter", "reference=tools/*")).toEqual(["tools/cli:edge", "app:1"]);
    expect(await repoTags("--filter", "label=tier=web")).toEqual(["app:2", "app:latest", "app:1"]);
    expect(await repoTags("--filter", "label=tier", "--filter", "label=version=2")).toEqual(["app:2", "app:latest"]);
    expect(await repoTags("-f", "label=tier=tool")).toEqual(["tools/cli:edge"]);
    expect(await repoTags("--filter", "dangling=true")).toEqual([]);
    expect(await repoTags("--filter", "dangling=false", "app:1")).toEqual(["app:1"]);
    expect(await repoTags("--filter", "before=app:2", "--filter", "label=tier")).toEqual(["app:1"]);
    expect(await repoTags("--filter", `since=${ids["app:1"]?.slice(7, 19)}`)).toEqual(["busybox:local", "tools/cli:edge", "app:2", "app:latest"]);
  });

  it("bad filters are usage errors naming the filter", async () => {
    const unknown = await r(["images", "--filter", "lable=x"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown filter "lable" (the filters are dangling, reference, label, before, since) [BAD_FLAG_VALUE]');
    expect(unknown.stderr).toContain("hint: did you mean label=…?");
    const dangling = await r(["images", "--filter", "dangling=maybe"]);
    expect(dangling.stderr).toContain("dangling takes true or false");
    const missing = await r(["images", "--filter", "before=nosuch:1"]);
    expect(missing.stderr).toContain("--filter before=nosuch:1: no such image: nosuch:1 [IMAGE_NOT_FOUND]");
    expect((await r(["images", "--filter", "reference=a[b"])).stderr).toContain("[BAD_PATTERN]");
  });
});

describe("images: output formats", () => {
  it("the default table, --digests and -q", async () => {
    const table = await r(["images", "app"]);
    expect(lines(table.stdout)[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(lines(table.stdout)[1]).toMatch(new RegExp(`^app\\s+2\\s+${ids["app:2"]?.slice(7, 19)}\\s+\\d+ years? ago\\s+\\d`));
    const digests = await r(["images", "--digests", "app:1"]);
    expect(lines(digests.stdout)[0]).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(lines(digests.stdout)[1]).toMatch(/^app\s+1\s+sha256:[0-9a-f]{64}\s+[0-9a-f]{12}\s/);
    // One id per image (app:2 and app:latest are one image), full with --no-trunc.
    expect(lines((await r(["images", "-q", "app"])).stdout)).toEqual([ids["app:2"]?.slice(7, 19), ids["app:1"]?.slice(7, 19)]);
    expect(lines((await r(["images", "-q", "--no-trunc", "app:1"])).stdout)).toEqual([ids["app:1"]]);
  });

  it("json: docker's row objects, one a line", async () => {
    const res = await r(["images", "--format", "json", "app:1"]);
    const rows = lines(res.stdout).map((l) => JSON.parse(l) as Record<string, string>);
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0] ?? {})).toEqual([
      "Containers",
      "CreatedAt",
      "CreatedSince",
      "Digest",
      "ID",
      "Repository",
      "SharedSize",
      "Size",
      "Tag",
      "UniqueSize",
      "VirtualSize",
    ]);
    expect(rows[0]).toMatchObject({
      Repository: "app",
      Tag: "1",
      ID: ids["app:1"]?.slice(7, 19),
      CreatedAt: "2020-09-13 12:26:40 +0000 UTC",
      Containers: "N/A",
    });
    expect(res.stdout).toBe((await r(["images", "--format", "{{json .}}", "app:1"])).stdout);
  });

  it("templates: fields, table with a header, \\t escapes", async () => {
    expect(lines((await r(["images", "--format", "{{.ID}} {{.Size}}", "app:1"])).stdout)[0]).toMatch(/^[0-9a-f]{12} \d+(\.\d+)?[kM]?B$/);
    const t = await r(["images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.CreatedAt}}", "app"]);
    expect(t.stdout).toBe(
      [
        "REPOSITORY   TAG       CREATED AT",
        "app          2         2021-08-26 17:46:40 +0000 UTC",
        "app          latest    2021-08-26 17:46:40 +0000 UTC",
        "app          1         2020-09-13 12:26:40 +0000 UTC",
        "",
      ].join("\n"),
    );
    expect((await r(["images", "--format", "{{.Repository}}\\t{{.Tag}}", "app:1"])).stdout).toBe("app\t1\n");
  });

  it("an unknown field is an error naming it, the fields and the nearest — even when nothing matches", async () => {
    const res = await r(["images", "--format", "{{.Repo}}:{{.Tag}}", "nothing"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown field .Repo in {{.Repo}}; the fields are .Containers, .CreatedAt, .CreatedSince, .Digest, .ID, .Repository");
    expect(res.stderr).toContain("[BAD_TEMPLATE]");
    const near = await r(["images", "--format", "{{.Tage}}"]);
    expect(near.stderr).toContain("hint: did you mean .Tag?");
  });
});

describe("history and inspect --format", () => {
  it("history: json rows, templates, -q", async () => {
    const res = await r(["history", "--format", "json", "app:1"]);
    const first = JSON.parse(lines(res.stdout)[0] ?? "{}") as Record<string, string>;
    expect(Object.keys(first)).toEqual(["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"]);
    expect(first).toMatchObject({ ID: ids["app:1"]?.slice(7, 19), CreatedAt: "2020-09-13T12:26:40Z" });
    expect(first.CreatedBy).toContain("LABEL tier=web version=1");
    const by = await r(["history", "--no-trunc", "--format", "{{.ID}}|{{.Size}}", "app:1"]);
    expect(lines(by.stdout)[0]).toBe(`${ids["app:1"]}|0B`);
    expect(
      lines(by.stdout)
        .slice(1)
        .every((l) => l.startsWith("<missing>|")),
    ).toBe(true);
    expect((await r(["history", "-q", "app:1"])).stdout).toBe(`${ids["app:1"]?.slice(7, 19)}\n`);
  });

  it("inspect --format runs over docker's inspect shape; the default JSON stays tsbuild's", async () => {
    const f = async (tpl: string, ...refs: string[]) => {
      const res = await r(["inspect", "--format", tpl, ...refs]);
      expect(res.code, res.stderr).toBe(0);
      return res.stdout;
    };
    expect(await f("{{.Id}}", "app:1", "app:2")).toBe(`${ids["app:1"]}\n${ids["app:2"]}\n`);
    expect(await f("{{.RepoTags}}", "app:2")).toBe("[app:2 app:latest]\n");
    expect(await f('{{index .Config.Labels "version"}} {{.Config.Labels.tier}}', "app:2")).toBe("2 web\n");
    expect(await f("{{.Config.Labels}}", "app:1")).toBe("map[tier:web version:1]\n");
    expect(await f("{{json .Config.Labels}}", "app:1")).toBe('{"tier":"web","version":"1"}\n');
    expect(await f("{{.Config.Env}}", "app:1")).toMatch(/^\[PATH=[^\]]*\]\n$/);
    expect(await f("{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}", "busybox:local")).toMatch(/^linux\/\w+ \d+\n$/);
    expect(await f("{{.Created}}", "app:1")).toBe("2020-09-13T12:26:40.000Z\n");
    const json = JSON.parse(await f("json", "app:1")) as { Id: string; Config: { Labels: Record<string, string>; Env: string[] } }[];
    expect(json[0]?.Id).toBe(ids["app:1"]);
    expect(json[0]?.Config.Labels).toEqual({ tier: "web", version: "1" });
    const plain = JSON.parse((await r(["inspect", "-f", "{{json .}}", "app:1"])).stdout) as { RepoTags: string[]; RepoDigests: null };
    expect(plain.RepoTags).toEqual(["app:1"]);
    // Without --format: tsbuild's own shape (Config is the OCI config), as before.
    const own = JSON.parse((await r(["inspect", "app:1"])).stdout) as { Config: { config: { Labels: Record<string, string> } }; ManifestDigest: string }[];
    expect(own[0]?.Config.config.Labels).toEqual({ tier: "web", version: "1" });
    expect(own[0]?.ManifestDigest).toMatch(/^sha256:/);
    const bad = await r(["inspect", "--format", "{{.Config.Envv}}", "app:1"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown field .Envv in {{.Config.Envv}} (in .Config)");
    expect(bad.stderr).toContain("hint: did you mean .Config.Env?");
  });
});
