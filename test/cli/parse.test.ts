// `tsbuild parse --json` prints the syntax tree of whatever BuildKit's parser accepts; the instruction-level errors
// in it are reported by `check` (and `build`), with their code and position, as BuildKit reports them.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir("tsbuild-parse-");
});
afterAll(async () => {
  await dir?.cleanup();
});

async function dockerfile(name: string, text: string): Promise<string> {
  const file = join(dir.path, name);
  await writeFile(file, text);
  return file;
}

describe("tsbuild parse --json and check", () => {
  it.each([
    ["cmd-before-from", "NO_FROM", 1, "CMD echo\nFROM busybox\n"],
    ["add-one-arg", "ARITY", 2, "FROM busybox\nADD x\n"],
    ["unknown-flag", "UNKNOWN_FLAG", 2, "FROM busybox\nRUN --frob=1 true\n"],
    ["unknown-instruction", "UNKNOWN_INSTRUCTION", 2, "FROM busybox\nFRM x\n"],
    ["shell-not-json", "SHELL_NOT_JSON", 2, "FROM busybox\nSHELL /bin/sh -c\n"],
  ])("%s: parse prints the tree, check reports %s on line %d", async (name, code, line, text) => {
    const file = await dockerfile(name, text);
    const parsed = await tsbuild(["parse", "--json", "-f", file, dir.path]);
    expect(parsed.stderr).toBe("");
    expect(parsed.code).toBe(0);
    const json = JSON.parse(parsed.stdout) as { instructions: { keyword: string }[] };
    expect(json.instructions.length).toBe(text.trim().split("\n").length);
    const checked = await tsbuild(["check", "-f", file, dir.path]);
    expect(checked.code).not.toBe(0);
    expect(checked.stderr).toContain(`[${code}]`);
    expect(checked.stderr).toContain(`:${line}:`);
  });

  it("fails where BuildKit's parser fails, with the error's position", async () => {
    const file = await dockerfile("unterminated", "FROM busybox\nRUN <<EOF\necho\n");
    const parsed = await tsbuild(["parse", "--json", "-f", file, dir.path]);
    expect(parsed.code).not.toBe(0);
    expect(parsed.stdout).toBe("");
    expect(parsed.stderr).toContain("[UNTERMINATED_HEREDOC]");
  });
});
