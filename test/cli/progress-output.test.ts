// Real builds through the CLI, each progress mode: a failed RUN's output appears once, in whole lines, in BuildKit's
// shape; the terminal view marks the failure red; and --progress=json emits exactly what docs/progress-json.md says.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { REPO, tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let n = 0;

async function project(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const p = join(dir.path, `ctx-${++n}`);
  await mkdir(p, { recursive: true });
  await writeFile(join(p, "Dockerfile"), dockerfile);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(p, name, ".."), { recursive: true });
    await writeFile(join(p, name), content);
  }
  return p;
}

const FAILING = "FROM busybox:local\nENV A=1\nRUN nonexistent-command\n";
const NOT_FOUND = "/bin/sh: nonexistent-command: not found";
const count = (text: string, part: string) => text.split(part).length - 1;

beforeAll(async () => {
  dir = await tempDir("tsbuild-progress-");
  root = join(dir.path, "store");
  const r = await tsbuild(["load", "-q", "--root", root, "-i", await makeBusyboxArchive()]);
  expect(r.code, r.stderr).toBe(0);
}, 60_000);
afterAll(async () => {
  await dir?.cleanup();
});

describe("a failed RUN", () => {
  it("plain: BuildKit's shape, the output once and whole, the config-only ENV folded, then the code frame", async () => {
    const r = await tsbuild(["build", "--progress=plain", "--root", root, await project(FAILING)]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split("\n");
    expect(lines).toContain("#1 [1/2] FROM busybox:local");
    expect(lines).toContain("#2 [2/2] RUN nonexistent-command");
    expect(lines).toContainEqual(expect.stringMatching(/^#2 \d+\.\d{3} \/bin\/sh: nonexistent-command: not found$/));
    expect(lines).toContain('#2 ERROR: process "/bin/sh -c nonexistent-command" did not complete successfully: exit code: 127');
    expect(count(r.stderr, NOT_FOUND)).toBe(1);
    expect(r.stderr).not.toMatch(/^#\d+ .*ENV/m);
    expect(r.stderr).toMatch(
      /^error: .*Dockerfile:3:1: process "\/bin\/sh -c nonexistent-command" did not complete successfully: exit code: 127 \[RUN_FAILED\]$/m,
    );
    expect(r.stderr).toContain("> 3 | RUN nonexistent-command");
  });

  it("quiet: the last lines once, in BuildKit's box", async () => {
    const r = await tsbuild(["build", "-q", "--root", root, await project(FAILING)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`------\n > [2/2] RUN nonexistent-command:\n${NOT_FOUND}\n------\n`);
    expect(count(r.stderr, NOT_FOUND)).toBe(1);
  });

  it("terminal view: a red ERROR line and the log block", async () => {
    const r = await tsbuild(["build", "--progress=tty", "--root", root, await project(FAILING)], { env: { ...process.env, NO_COLOR: "" } });
    expect(r.code).toBe(1);
    // What stays on screen: the redraws' cursor moves and line erases left out.
    const screen = r.stderr.replace(/\x1b\[2K|\x1b\[J|\x1b\[\d+A|\r/g, "");
    expect(screen).toMatch(/\x1b\[31m=> ERROR \[2\/2\] RUN nonexistent-command +\d+\.\ds\x1b\[0m/);
    expect(screen).toMatch(/ > \[2\/2\] RUN nonexistent-command:\n\d+\.\d{3} \/bin\/sh: nonexistent-command: not found\n/);
    expect(screen).not.toMatch(/=> .*ENV A=1/);
  });
});

type Json = Record<string, unknown>;

/** docs/progress-json.md's tables: "Every event" fields, and per `### \`kind\`` section its fields (name → required, type). */
async function documented(): Promise<{ common: Map<string, Field>; kinds: Map<string, Map<string, Field>> }> {
  const text = await readFile(join(REPO, "docs/progress-json.md"), "utf8");
  const common = new Map<string, Field>();
  const kinds = new Map<string, Map<string, Field>>();
  let current: Map<string, Field> | undefined;
  for (const line of text.split("\n")) {
    const h = /^### `([a-z-]+)`/.exec(line);
    if (h) kinds.set(h[1] as string, (current = new Map()));
    else if (line === "## Every event") current = common;
    else if (line.startsWith("## ") || line.startsWith("```")) current = line === "## Event kinds" ? undefined : current;
    const row = /^\| `(\w+)` \| (\w+) \| (yes|no) \|/.exec(line);
    if (row && current) current.set(row[1] as string, { type: row[2] as string, required: row[3] === "yes" });
  }
  return { common, kinds };
}
interface Field {
  type: string;
  required: boolean;
}
const typeOf = (v: unknown) => (Array.isArray(v) ? "array" : v === null ? "null" : typeof v);

describe("--progress=json", () => {
  it("every event of real builds is documented in docs/progress-json.md, with its fields and their types", async () => {
    const { common, kinds } = await documented();
    expect([...common.keys()]).toEqual(["time", "kind"]);
    expect([...kinds.keys()].sort()).toEqual(["cache-miss", "info", "plan", "step-end", "step-log", "step-progress", "step-start", "warning"]);
    const ok = await project("FROM busybox:local AS base\nENV A=1\nCOPY d /d\nRUN echo out; echo err >&2\nFROM base\nCMD echo hi\n", {
      "d/a": "aaa\n",
      "d/b": "bb\n",
      "d/sub/c": "c\n",
    });
    const good = await tsbuild(["build", "--progress=json", "-t", "json:1", "--root", root, ok]);
    expect(good.code, good.stderr).toBe(0);
    const bad = await tsbuild(["build", "--progress=json", "--root", root, await project(FAILING)]);
    expect(bad.code).toBe(1);
    const events = [...good.stderr.split("\n"), ...bad.stderr.split("\n")].filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Json);
    const seen = new Set<string>();
    const fieldsSeen = new Set<string>();
    for (const e of events) {
      const kind = e["kind"] as string;
      const fields = kinds.get(kind);
      expect(fields, `event kind ${kind} is not documented`).toBeDefined();
      seen.add(kind);
      const all = new Map([...common, ...(fields ?? [])]);
      for (const [name, value] of Object.entries(e)) {
        const f = all.get(name);
        expect(f, `${kind}.${name} is not documented`).toBeDefined();
        expect(typeOf(value), `${kind}.${name}`).toBe(f?.type);
        fieldsSeen.add(`${kind}.${name}`);
      }
      for (const [name, f] of all) if (f.required) expect(e, `${kind} lacks ${name}`).toHaveProperty(name);
    }
    expect([...seen].sort()).toEqual(["cache-miss", "info", "plan", "step-end", "step-log", "step-start", "step-progress", "warning"].sort());
    for (const f of ["step-start.folded", "step-start.range", "step-end.error", "warning.rule"]) expect(fieldsSeen, f).toContain(f);

    // The plan's total is the steps the build shows: 1 + COPY + RUN for base, 1 for the last stage (CMD is config-only).
    const first = events.find((e) => e["kind"] === "plan");
    expect(first?.["steps"]).toBe(4);
    expect(events.filter((e) => e["kind"] === "step-start" && e["folded"] === true).map((e) => e["name"])).toEqual([
      "[base] ENV A=1",
      "[stage-1] CMD echo hi",
      "ENV A=1",
    ]);
    // The COPY's last progress event counts every file and byte it copied.
    const copy = events.find((e) => e["kind"] === "step-start" && e["name"] === "[base 2/3] COPY d /d");
    const progress = events.filter((e) => e["kind"] === "step-progress" && e["node"] === copy?.["node"]);
    expect(progress.at(-1)).toMatchObject({ files: 3, bytes: 9 });
  });
});
