// COPY heredocs through the real CLI, as BuildKit writes them: the marker's quoting decides expansion, and an
// expanded body keeps its quotes (BuildKit's ExpandRaw: only `$` and the backslash escape are processed).
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir("tsbuild-heredoc-");
});
afterAll(async () => {
  await dir?.cleanup();
});

async function build(dockerfile: string): Promise<string> {
  const p = join(dir.path, `proj-${Math.random().toString(36).slice(2)}`);
  await mkdir(p, { recursive: true });
  await writeFile(join(p, "Dockerfile"), dockerfile);
  const out = join(p, "out");
  const res = await tsbuild(["build", "--root", join(dir.path, "store"), "--progress", "plain", "-o", `type=local,dest=${out}`, p]);
  expect(res.code, res.stderr).toBe(0);
  return out;
}

describe("COPY heredocs", () => {
  it("expands $VARS but keeps quotes in the body; a quoted marker (any part) keeps the body as written", async () => {
    const out = await build(
      [
        "FROM scratch",
        "ARG NAME=world",
        "COPY <<EOF /expanded",
        `echo "hello $NAME" 'it''s' don't \\$NAME`,
        "EOF",
        'COPY <<E"O"F /literal',
        `echo "hello $NAME"`,
        "EOF",
        "COPY <<SPACED <<-'TABS' /dir/",
        "spaced $NAME",
        "SPACED",
        "\ttabbed $NAME",
        "\tTABS",
        "",
      ].join("\n"),
    );
    expect(await readFile(join(out, "expanded"), "utf8")).toBe(`echo "hello world" 'it''s' don't $NAME\n`);
    expect(await readFile(join(out, "literal"), "utf8")).toBe(`echo "hello $NAME"\n`);
    expect(await readFile(join(out, "dir/SPACED"), "utf8")).toBe("spaced world\n");
    expect(await readFile(join(out, "dir/TABS"), "utf8")).toBe("tabbed $NAME\n");
  });
});
