// `tsbuild save` to standard output (no -o, or -o -) and `tsbuild load` from standard input (no -i, or -i -), through
// the real CLI: in-process with fed stdin/stdout, and as a real process in a shell pipe; terminals are refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BIN, tempDir, tsbuild } from "../helpers/cli.js";
import { exec } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let ctx: string;
const r = (args: string[], opts: Parameters<typeof tsbuild>[1] = {}) => tsbuild([...args, "--root", root], { cwd: dir.path, ...opts });

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  ctx = join(dir.path, "ctx");
  await exec("mkdir", ["-p", ctx]);
  await writeFile(join(ctx, "Dockerfile"), "FROM scratch\nCOPY hello.txt /\nLABEL piped=yes\n");
  await writeFile(join(ctx, "hello.txt"), "hello\n");
  const built = await r(["build", "-q", "-t", "piped:1", ctx]);
  expect(built.code, built.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("save to stdout, load from stdin", () => {
  for (const flags of [[], ["-o", "-"]]) {
    it(`save ${flags.join(" ") || "(no -o)"} writes the archive to stdout, and load reads it back from stdin`, async () => {
      const saved = await r(["save", ...flags, "piped:1"]);
      expect(saved.code, saved.stderr).toBe(0);
      const bytes = saved.stdoutBytes as Buffer;
      // A tar: "ustar" at offset 257 of the first header.
      expect(bytes.subarray(257, 262).toString()).toBe("ustar");
      const file = join(dir.path, `saved-${flags.length}.tar`);
      await writeFile(file, bytes);
      const listed = await exec("tar", ["-tf", file]);
      expect(listed.stdout).toContain("manifest.json");

      const other = join(dir.path, `store-${flags.length}`);
      for (const loadFlags of [[], ["-i", "-"]]) {
        const loaded = await tsbuild(["load", ...loadFlags, "--root", other], { stdin: bytes });
        expect(loaded.code, loaded.stderr).toBe(0);
        expect(loaded.stdout).toBe("Loaded image: piped:1\n");
      }
      const info = JSON.parse((await tsbuild(["inspect", "piped:1", "--root", other])).stdout)[0];
      expect(info.Config.config.Labels).toEqual({ piped: "yes" });
    });
  }

  it("works in a shell pipe between two real processes", async () => {
    const other = join(dir.path, "store-pipe");
    const { stdout } = await promisify(execFile)("sh", [
      "-c",
      `"${process.execPath}" "${BIN}" save --root "${root}" piped:1 | "${process.execPath}" "${BIN}" load --root "${other}"`,
    ]);
    expect(stdout).toBe("Loaded image: piped:1\n");
  });

  it("refuses to write the archive to a terminal", async () => {
    for (const flags of [[], ["-o", "-"]]) {
      const res = await r(["save", ...flags, "piped:1"], { stdoutIsTTY: true });
      expect(res.code).toBe(2);
      expect(res.stdout).toBe("");
      expect(res.stderr).toContain("error: refusing to write the image archive to a terminal [STDOUT_IS_TERMINAL]");
      expect(res.stderr).toContain("hint: use -o FILE, or redirect standard output");
    }
    // -o FILE still works with stdout on a terminal.
    const file = join(dir.path, "to-file.tar");
    const res = await r(["save", "-o", file, "piped:1"], { stdoutIsTTY: true });
    expect(res.code, res.stderr).toBe(0);
    expect((await readFile(file)).subarray(257, 262).toString()).toBe("ustar");
  });

  it("refuses to load from a terminal, and names an empty or broken stdin", async () => {
    const tty = await r(["load"], { stdinIsTTY: true });
    expect(tty.code).toBe(2);
    expect(tty.stderr).toContain("error: requested load from stdin, but stdin is a terminal [STDIN_IS_TERMINAL]");
    expect(tty.stderr).toContain("hint: pipe an archive into it");

    const empty = await r(["load"], { stdin: "" });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain("error: standard input: is empty (0 bytes) [EMPTY_ARCHIVE]");

    const saved = (await r(["save", "piped:1"])).stdoutBytes as Buffer;
    const cut = await r(["load", "-i", "-"], { stdin: saved.subarray(0, Math.floor(saved.length / 2)) });
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/error: standard input: .*truncated/);
    expect(cut.stderr).not.toContain("this is a bug");
  });
});
