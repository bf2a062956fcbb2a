// A table of bad CLI invocations run in-process: each must exit non-zero with a message that names the flag, path
// or value at fault — never "this is a bug", never a stack trace, never a raw errno such as "EISDIR: ...".
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let ctx: string;
let file: string;
let sub: string;
const long = () => join(dir.path, "n".repeat(300));

beforeAll(async () => {
  dir = await tempDir("tsbuild-errpaths-");
  root = join(dir.path, "store");
  ctx = join(dir.path, "ctx");
  await mkdir(ctx);
  await writeFile(join(ctx, "Dockerfile"), "FROM scratch\nCOPY a /a\n");
  await writeFile(join(ctx, "a"), "a\n");
  file = join(dir.path, "plain-file");
  await writeFile(file, "x");
  sub = join(dir.path, "a-dir");
  await mkdir(sub);
  const res = await tsbuild(["build", "-q", "-t", "known:1", ctx, "--root", root]);
  expect(res.code, res.stderr).toBe(0);
}, 60_000);
afterAll(async () => {
  await dir?.cleanup();
});

/** [args (without --root), text the message must contain]. Functions run after beforeAll (paths known then). */
type Case = () => [string[], string | RegExp];
const cases: Case[] = [
  // Output paths: directories, files on the way, names too long, empty.
  () => [["save", "-o", sub, "known:1"], `save -o ${sub}: is a directory`],
  () => [["save", "-o", join(file, "x.tar"), "known:1"], `save -o ${join(file, "x.tar")}`],
  () => [["save", "-o", long(), "known:1"], "too long"],
  () => [["save", "-o", "", "known:1"], "save -o needs a file name"],
  () => [["save", "-o", join(dir.path, "s.tar")], "at least one image"],
  () => [["save", "-o", join(dir.path, "s.tar"), "nosuch:1"], "nosuch"],
  () => [["build", "--metadata-file", sub, ctx], `--metadata-file ${sub}: is a directory`],
  () => [["build", "--metadata-file", join(file, "m.json"), ctx], `--metadata-file ${join(file, "m.json")}`],
  () => [["build", "--metadata-file", long(), ctx], "--metadata-file"],
  () => [["build", "--metadata-file", "", ctx], "--metadata-file"],
  () => [["build", "-o", `type=oci,dest=${sub}`, ctx], `--output type=oci dest ${sub}: is a directory`],
  () => [["build", "-o", `type=docker,dest=${sub}`, ctx], `--output type=docker dest ${sub}: is a directory`],
  () => [["build", "-o", `type=oci,dest=${join(file, "x.tar")}`, ctx], join(file, "x.tar")],
  () => [["build", "-o", `type=docker,dest=${join(file, "y", "x.tar")}`, ctx], join(file, "y", "x.tar")],
  () => [["build", "-o", `type=oci,dest=${long()}`, ctx], "too long"],
  () => [["build", "-o", `type=docker,dest=${long()}`, ctx], "too long"],
  () => [["build", "-o", `type=local,dest=${file}`, ctx], `--output type=local dest ${file}: exists and is not a directory`],
  () => [["build", "-o", `type=oci,tar=false,dest=${file}`, ctx], `--output type=oci dest ${file}`],
  () => [["build", "-o", file, ctx], file],
  () => [["build", "-o", `type=local,dest=${long()}`, ctx], "too long"],
  () => [["build", "-o", `type=local,dest=${join(file, "sub")}`, ctx], join(file, "sub")],
  () => [["build", "-o", "", ctx], "--output"],
  () => [["build", "-o", "type=local", ctx], "--output"],
  () => [["build", "-o", "type=oci", ctx], "--output"],
  () => [["build", "-o", "type=docker", ctx], "--output"],
  () => [["build", "-o", "dest=", ctx], "--output"],
  () => [["build", "-o", "type=oci,dest=", ctx], "--output"],
  () => [["build", "-o", "type=zip,dest=x", ctx], "--output type=zip"],
  () => [["build", "-o", "type=oci,dest=x,tar=maybe", ctx], "tar must be"],
  () => [["build", "-o", "type=oci,dest=x,compression=brotli", ctx], "compression"],
  () => [["build", "-o", "type=oci,dest=x,compression=zstd,compression-level=30", ctx], "compression-level: 30 is not a zstd level"],
  () => [["build", "-o", "type=docker,dest=x,compression=zstd", ctx], "type=oci"],
  () => [["build", "-o", "type=oci,dest=x,colour=red", ctx], "unknown key colour"],
  () => [["build", "-o", "type=oci,dest=x,name=Bad Name", ctx], "Bad Name"],
  () => [["build", "-o", "novalue", "-o", "=x", ctx], "--output"],
  () => [["build", "--cache-to", `type=local,dest=${file}`, ctx], `--cache-to type=local dest ${file}`],
  () => [["build", "--cache-to", "type=local,dest=", ctx], "--cache-to"],
  () => [["build", "--cache-from", "type=local,src=", ctx], "--cache-from"],
  // Store root.
  () => [["images", "--root", file], `--root ${file}`],
  () => [["build", ctx, "--root", join(file, "store")], `--root ${join(file, "store")}`],
  () => [["images", "--root", ""], "--root"],
  // References.
  () => [["pull", "localhost:99999/x"], "port 99999"],
  () => [["pull", "localhost:0/x"], "port 0"],
  () => [["push", "known:1", "localhost:70000/x:1"], "port 70000"],
  () => [["login", "-u", "a", "--password-stdin", "localhost:99999"], "port 99999"],
  () => [["logout", "localhost:123456"], "port 123456"],
  () => [["tag", "known:1", "b:"], '"b:"'],
  () => [["tag", "known:1", "a/B"], "lower-case"],
  () => [["tag", "known:1", ""], "empty"],
  () => [["push", "x y"], '"x y"'],
  () => [["pull", "http://x"], '"http://x"'],
  () => [["pull", "a@sha256:zz"], "sha256:zz"],
  () => [["pull", "[1]:5000/x"], "[1]:5000"],
  () => [["pull", "a:b:c"], '"a:b:c"'],
  () => [["pull", "a//b"], "empty path component"],
  () => [["pull", "-a"], "-a"],
  () => [["pull", "a".repeat(300)], "longer than 255"],
  () => [["push", "known:1", "127.0.0.1:5999/x@sha256:" + "0".repeat(64)], "digest"],
  () => [["inspect", "nosuch:2"], "nosuch:2"],
  () => [["rmi", "nosuch:3"], "nosuch:3"],
  // Missing values, unknown flags (a string flag given twice takes the last value, as in docker).
  () => [["build", "-o"], "--output needs a value"],
  () => [["build", ctx, "--metadata-file"], "--metadata-file needs a value"],
  () => [["build", "-o", "--quiet", ctx], "--output needs a value"],
  () => [["build", "--target", "--no-cache", ctx], "--target needs a value"],
  () => [["save", "-o", "--root", "x", "known:1"], "--output needs a value"],
  () => [["build", "--jobs", "0", ctx], "--jobs"],
  () => [["build", "--progress", "loud", ctx], "--progress"],
  () => [["build", "--nope", ctx], "--nope"],
  () => [["build", "--quiet=maybe", ctx], "--quiet"],
  () => [["build", "-f", sub, ctx], sub],
  () => [["build", "--build-arg", "=x", ctx], "--build-arg"],
  () => [["load", "-i", sub], sub],
  () => [["load", "-i", join(dir.path, "missing.tar")], "missing.tar"],
  // No -i: standard input, empty here (a terminal there is refused: save-load-stdio.test.ts).
  () => [["load"], "standard input: is empty"],
  () => [["prune", "--keep-storage", "lots"], "--keep-storage"],
  () => [["prune", "--filter", "since=1h"], "--filter"],
  () => [["push", "known:1", "--format", "v1"], "--format"],
  () => [["login", "--password", "a", "--password-stdin", "-u", "x", "localhost:5000"], "--password-stdin"],
  () => [["frobnicate"], "frobnicate"],
];

describe("bad CLI invocations", () => {
  it(`has at least 60 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });

  it("each exits non-zero with a clear message naming the flag, path or value", async () => {
    const failures: string[] = [];
    for (const c of cases) {
      const [args, want] = c();
      const res = await tsbuild(args.includes("--root") ? args : [...args, "--root", root], { cwd: dir.path });
      const where = `tsbuild ${args.map((a) => JSON.stringify(a)).join(" ")} → exit ${res.code}\n${res.stderr}`;
      const bad =
        res.code === 0 ||
        res.stderr.includes("this is a bug") ||
        /^\s+at /m.test(res.stderr) ||
        /\bE[A-Z]{3,}: /.test(res.stderr) ||
        res.stderr.includes("Invalid URL") ||
        !(typeof want === "string" ? res.stderr.includes(want) : want.test(res.stderr));
      if (bad) failures.push(`${where}\n(expected the message to contain ${String(want)})`);
    }
    // Nothing was written into the working directory by any of them.
    await rm(join(dir.path, "a.json"), { force: true });
    expect(failures, failures.join("\n\n")).toEqual([]);
  }, 120_000);
});
