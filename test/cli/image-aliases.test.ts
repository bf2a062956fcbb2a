// docker's command groups (`image ls`, `image rm`, `builder prune`, `buildx build`, ...), `tsbuild help CMD`,
// "did you mean" for commands and flags, rmi -f and several images, image prune, and docker's lowercase rule.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let ctxDir: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);
const names = async () => (await r(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter(Boolean).sort();

beforeAll(async () => {
  dir = await tempDir("tsbuild-aliases-");
  root = join(dir.path, "store");
  const loaded = await r(["image", "load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
  expect(loaded.stdout).toContain("Loaded image: busybox:local");
  ctxDir = join(dir.path, "ctx");
  await mkdir(ctxDir);
  await writeFile(join(ctxDir, "Dockerfile"), "FROM busybox:local\nLABEL purpose=alias-test\n");
}, 60_000);
afterAll(async () => {
  await dir?.cleanup();
});

describe("docker's command groups", () => {
  it("buildx build / image build / builder build build; image ls|list, tag, inspect, history, rm|remove", async () => {
    for (const [i, cmd] of [
      ["buildx", "build"],
      ["image", "build"],
      ["builder", "build"],
    ].entries()) {
      const res = await r([...(cmd as string[]), "-q", "-t", `alias:${i}`, ctxDir]);
      expect(res.code, res.stderr).toBe(0);
    }
    expect((await r(["image", "tag", "alias:0", "alias:tagged"])).code).toBe(0);
    const ls = await r(["image", "ls", "alias"]);
    expect(ls.stdout).toBe((await r(["images", "alias"])).stdout);
    expect(ls.stdout).toMatch(/^alias\s+tagged\s/m);
    expect((await r(["image", "list", "-q", "alias:tagged"])).stdout).toBe((await r(["images", "-q", "alias:0"])).stdout);
    expect(JSON.parse((await r(["image", "inspect", "alias:0"])).stdout)[0].Config.config.Labels).toEqual({ purpose: "alias-test" });
    expect((await r(["image", "inspect", "-f", "{{.Config.Labels.purpose}}", "alias:0"])).stdout).toBe("alias-test\n");
    expect((await r(["image", "history", "alias:0"])).stdout).toMatch(/^IMAGE\s+CREATED\s+CREATED BY/);
    expect((await r(["image", "rm", "alias:1"])).stdout).toBe("Untagged: alias:1\n");
    expect((await r(["image", "remove", "alias:2"])).stdout).toBe("Untagged: alias:2\n");
    expect(await names()).toEqual(["alias:0", "alias:tagged", "busybox:local"]);
  });

  it("image save, builder du, buildx du, builder prune -f, buildx prune -af", async () => {
    const tar = join(dir.path, "saved.tar");
    expect((await r(["image", "save", "-o", tar, "busybox:local"])).code).toBe(0);
    expect((await r(["builder", "du"])).stdout).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE/);
    expect((await r(["buildx", "du", "--verbose"])).stdout).toContain("Build cache records:");
    const p = await r(["builder", "prune", "-f"]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/Total reclaimed space: /);
    const all = await r(["buildx", "prune", "-af"]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/Deleted (image|step) cache records: \d+/);
    // Tagged images survive every build cache prune.
    expect(await names()).toEqual(["alias:0", "alias:tagged", "busybox:local"]);
  });

  it("a group alone or with --help lists its commands; an unknown subcommand gets a suggestion", async () => {
    const help = await r(["image", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/ls\s+= tsbuild images/);
    expect(help.stdout).toMatch(/prune\s+= tsbuild image prune/);
    expect((await r(["image"])).code).toBe(2);
    const typo = await r(["image", "lss"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('unknown command "image lss"');
    expect(typo.stderr).toContain('Did you mean "image ls"?');
  });
});

describe("help and did-you-mean", () => {
  it("`tsbuild help CMD` is `tsbuild CMD --help`, also for aliases", async () => {
    const a = await tsbuild(["help", "images"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe((await tsbuild(["images", "--help"])).stdout);
    expect(a.stdout).toContain("--filter KEY=VALUE");
    const b = await tsbuild(["help", "image", "ls"]);
    expect(b.stdout).toBe((await tsbuild(["image", "ls", "--help"])).stdout);
    expect(b.stdout).toMatch(/^`tsbuild image ls` is `tsbuild images`\./);
    expect((await tsbuild(["help", "builder", "prune"])).stdout).toContain("Usage: tsbuild prune");
    expect((await tsbuild(["help"])).stdout).toContain("image ls|list|rm");
  });

  it("a misspelled command suggests the nearest", async () => {
    for (const [typo, want] of [
      ["bild", "build"],
      ["imgaes", "images"],
      ["histroy", "history"],
      ["buidler", "builder"],
    ] as const) {
      const res = await tsbuild([typo, "x"]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`unknown command "${typo}"\nDid you mean "${want}"?`);
    }
    const far = await tsbuild(["frobnicate"]);
    expect(far.stderr).not.toContain("Did you mean");
    expect((await tsbuild(["help", "imags"])).stderr).toContain('Did you mean "images"?');
  });

  it("a misspelled flag suggests the nearest flag of that command", async () => {
    const res = await r(["images", "--no-trunk"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown flag --no-trunc".replace("trunc", "trunk"));
    expect(res.stderr).toContain("[UNKNOWN_FLAG]");
    expect(res.stderr).toContain("hint: did you mean --no-trunc?");
    expect((await r(["build", "--no-cahce", ctxDir])).stderr).toContain("did you mean --no-cache?");
    expect((await r(["build", "-tag", "x", ctxDir])).stderr).toContain("did you mean --tag?");
    expect((await r(["images", "--zzzzzz"])).stderr).not.toContain("did you mean");
  });
});

describe("rmi and repository names", () => {
  it("removes several images, going on after one that fails; -f removes an id's names across repositories", async () => {
    expect((await r(["tag", "busybox:local", "one:a"])).code).toBe(0);
    expect((await r(["tag", "busybox:local", "two:b"])).code).toBe(0);
    expect((await r(["tag", "busybox:local", "one:c"])).code).toBe(0);
    const several = await r(["rmi", "one:c", "nosuch:1", "two:b"]);
    expect(several.code).toBe(1);
    expect(several.stdout).toBe("Untagged: one:c\nUntagged: two:b\n");
    expect(several.stderr).toContain("no such image: nosuch:1 [IMAGE_NOT_FOUND]");
    expect((await r(["tag", "busybox:local", "two:b"])).code).toBe(0);
    const id = (await r(["images", "-q", "busybox:local"])).stdout.trim();
    const refused = await r(["rmi", id]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("named in several repositories (busybox:local, one:a, two:b) [NEEDS_FORCE]");
    expect(refused.stderr).toContain(`hint: remove the names one by one, or force it: tsbuild rmi -f ${id}`);
    const forced = await r(["rmi", "-f", id]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toBe("Untagged: busybox:local\nUntagged: one:a\nUntagged: two:b\n");
    expect((await r(["load", "-q", "-i", join(dir.path, "busybox.tar")])).code).toBe(0);
  });

  it("upper-case repository names are docker's invalid reference format, in tag, build -t, rmi and images", async () => {
    const want = "invalid reference format: repository name must be lowercase";
    for (const args of [
      ["tag", "busybox:local", "MyApp:1"],
      ["build", "-t", "MyApp", ctxDir],
      ["rmi", "Busybox:local"],
      ["inspect", "team/App"],
      ["save", "-o", join(dir.path, "x.tar"), "Busybox"],
    ]) {
      const res = await r(args);
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr).toContain(want);
      expect(res.stderr).toContain("[INVALID_REFERENCE]");
    }
    expect((await r(["tag", "busybox:local", `x@sha256:${"a".repeat(64)}`])).stderr).toContain("refusing to create a tag with a digest reference");
  });
});

describe("image prune", () => {
  it("without -a removes only dangling data; -a needs -f, honours filters and removes names, then their blobs", async () => {
    expect((await r(["tag", "alias:0", "keep:1"])).code).toBe(0);
    const plain = await r(["image", "prune", "-f"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/Total reclaimed space: /);
    expect(await names()).toEqual(["alias:0", "alias:tagged", "busybox:local", "keep:1"]);
    const refused = await r(["image", "prune", "-a"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("[NEEDS_FORCE]");
    const dry = await r(["image", "prune", "-a", "--dry-run", "--filter", "label=purpose=alias-test"]);
    expect(dry.stdout).toBe("Would untag: alias:0\nWould untag: alias:tagged\nWould untag: keep:1\n");
    const some = await r(["image", "prune", "-af", "--filter", "label!=purpose"]);
    expect(some.code, some.stderr).toBe(0);
    expect(some.stdout).toContain("Untagged: busybox:local\n");
    expect(await names()).toEqual(["alias:0", "alias:tagged", "keep:1"]);
    const rest = await r(["image", "prune", "-af"]);
    expect(rest.stdout).toMatch(/Untagged: alias:0\nUntagged: alias:tagged\nUntagged: keep:1\n[\s\S]*Deleted blobs: \d+/);
    expect(await names()).toEqual([]);
    expect((await r(["image", "prune", "--filter", "until=forever"])).stderr).toContain("is not a duration");
  });
});
