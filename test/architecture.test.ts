// The allowed-import table of docs/architecture.md holds: no folder imports one it may not, no folder cycle.
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REPO } from "./helpers/cli.js";

const run = promisify(execFile);

describe("architecture", () => {
  it("every import follows the allowed-import table and folders form no cycle", async () => {
    const { stdout } = await run(process.execPath, [join(REPO, "scripts/check-imports.mjs")]).catch((e: { stdout?: string; stderr?: string }) => {
      throw new Error(`scripts/check-imports.mjs failed:\n${e.stderr ?? ""}${e.stdout ?? ""}`);
    });
    expect(stdout).toMatch(/imports ok: \d+ cross-folder imports, no cycle/);
  });

  it("the table names every folder of src/", async () => {
    const { ALLOWED } = (await import(join(REPO, "scripts/check-imports.mjs"))) as { ALLOWED: Record<string, string[]> };
    const folders = readdirSync(join(REPO, "src"), { withFileTypes: true }).map((d) => (d.isDirectory() ? d.name : d.name.replace(/\.ts$/, "")));
    for (const f of folders) if (!f.endsWith(".generated")) expect(Object.keys(ALLOWED), `src/${f}`).toContain(f);
  });
});
