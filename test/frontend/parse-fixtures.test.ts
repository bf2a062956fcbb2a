// Data-driven parser cases: fixtures/parser/<case>/Dockerfile with result.json (the `parse --json` shape plus the
// stage graph of the build plan) or error.json ({ code, line, column }). UPDATE_FIXTURES=1 rewrites them from the current parser.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { parseResultToJson } from "../../src/frontend/parse-json.js";
import { planBuild, stageDependencies } from "../../src/frontend/plan.js";
import { TsbuildError } from "../../src/errors.js";

const ROOT = join(import.meta.dirname, "../../fixtures/parser");
const UPDATE = process.env.UPDATE_FIXTURES === "1";

function run(bytes: Uint8Array): { result: unknown } | { error: { code: string; line: number | null; column: number | null } } {
  try {
    const parsed = parseDockerfile(bytes, { file: "Dockerfile" });
    const deps = stageDependencies(planBuild(parsed, { platform: { os: "linux", architecture: "amd64" } }));
    const json = parseResultToJson(parsed) as Record<string, unknown>;
    return { result: { ...json, dependencies: Object.fromEntries([...deps].map(([k, v]) => [k, [...v].sort((a, b) => a - b)])) } };
  } catch (e) {
    if (!(e instanceof TsbuildError)) throw e;
    return { error: { code: e.code, line: e.range?.start.line ?? null, column: e.range?.start.column ?? null } };
  }
}

describe("fixtures/parser", () => {
  const cases = readdirSync(ROOT).sort();
  it("has cases", () => expect(cases.length).toBeGreaterThan(30));
  for (const name of cases) {
    it(name, () => {
      const dir = join(ROOT, name);
      const out = run(readFileSync(join(dir, "Dockerfile")));
      const file = name.startsWith("err-") ? "error.json" : "result.json";
      const got = "error" in out ? out.error : out.result;
      if (name.startsWith("err-")) expect("error" in out, `${name} should fail`).toBe(true);
      else expect("result" in out, `${name} should parse: ${JSON.stringify(got)}`).toBe(true);
      if (UPDATE || !existsSync(join(dir, file))) writeFileSync(join(dir, file), JSON.stringify(got, null, 2) + "\n");
      expect(got).toEqual(JSON.parse(readFileSync(join(dir, file), "utf8")));
    });
  }
});
