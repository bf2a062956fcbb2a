// Fuzz: thousands of random and mutated Dockerfiles either parse or fail with a TsbuildError — never another
// exception, never a hang. Seeded, so a failure reproduces.
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { decodeInstruction } from "../../src/frontend/instructions.js";
import { splitStages } from "../../src/frontend/stages.js";
import { checkPlan } from "../../src/frontend/plan.js";
import { parseResultToJson } from "../../src/frontend/parse-json.js";
import { TsbuildError } from "../../src/errors.js";

const REPO = join(import.meta.dirname, "../..");
const seeds = [
  readFileSync(join(REPO, "fixtures/hello/Dockerfile"), "utf8"),
  readFileSync(join(REPO, "fixtures/example/Dockerfile"), "utf8"),
  '# escape=`\nFROM a AS b\nRUN echo `\n  x\nCOPY --from=b ["a", "b"] /c/\nENV A="1 2" B=3\nONBUILD RUN x\nHEALTHCHECK --interval=5s CMD ["true"]\n',
  'FROM a\nRUN <<EOF\nset -e\necho $x\nEOF\nCOPY <<-A <<\'B\' /d/\n\tx\n\tA\ny\nB\nLABEL a=b c=d\nSHELL ["sh", "-c"]\nEXPOSE 80 90/udp\n',
  // Every data-driven parser case (bad ones too), except the 64 KiB line ones which would only test the length check.
  ...readdirSync(join(REPO, "fixtures/parser"))
    .filter((d) => !d.includes("long-line"))
    .sort()
    .map((d) => readFileSync(join(REPO, "fixtures/parser", d, "Dockerfile"), "utf8")),
];
const ALPHABET = [
  "\\",
  "`",
  '"',
  "'",
  "[",
  "]",
  "<<",
  "<<-",
  "\n",
  " ",
  "\t",
  "=",
  "--",
  "#",
  "$",
  "{",
  "}",
  ":",
  ",",
  "EOF",
  "FROM",
  "RUN",
  "ONBUILD",
  "\r",
  "\uFEFF",
  "é",
  "\0",
];

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(text: string, rand: () => number): string {
  let s = text;
  const n = 1 + Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rand() * (s.length + 1));
    const op = rand();
    if (op < 0.35) s = s.slice(0, at) + (ALPHABET[Math.floor(rand() * ALPHABET.length)] as string) + s.slice(at);
    else if (op < 0.6) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 5));
    else if (op < 0.8) {
      const len = Math.floor(rand() * 30);
      s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
    } else s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 0x3000)) + s.slice(at);
  }
  return s;
}

function randomText(rand: () => number): string {
  let s = "";
  const n = Math.floor(rand() * 40);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)] as string;
  return s;
}

/** The whole pure frontend a build runs: parse, stages, edges, typed decoding, JSON output. */
function frontend(text: string): void {
  const parsed = parseDockerfile(text);
  for (const i of parsed.instructions) decodeInstruction(i);
  splitStages(parsed);
  checkPlan(parsed, { platform: { os: "linux", architecture: "amd64" } });
  JSON.stringify(parseResultToJson(parsed));
}

describe("parser fuzz", () => {
  it("pathological lines stay fast: thousands of flags, words, quotes, continuations", () => {
    const big = [
      "FROM a\nRUN " + "--a ".repeat(16000) + "x",
      "FROM a\nRUN " + "ab ".repeat(21000),
      'FROM a\nCOPY --chown="' + "x ".repeat(30000),
      "FROM a\nRUN " + "x \\\n".repeat(20000) + "y",
      "FROM a\nENV " + 'a="b c" '.repeat(8000),
      "FROM a\nRUN " + "<<A ".repeat(5000) + "\n" + "A\n".repeat(5000),
    ];
    for (const text of big) {
      const t0 = performance.now();
      try {
        frontend(text);
      } catch (e) {
        if (!(e instanceof TsbuildError) || e.code === "PARSE_FAILED") throw e;
      }
      expect(performance.now() - t0).toBeLessThan(1000);
    }
  });

  it("3,000 random and mutated Dockerfiles: parse or TsbuildError, each within 500 ms", () => {
    const rand = prng(20261123);
    let parsed = 0;
    let rejected = 0;
    for (let c = 0; c < 3000; c++) {
      const seed = seeds[c % seeds.length] as string;
      const text = c % 10 === 9 ? randomText(rand) : mutate(seed, rand);
      const t0 = performance.now();
      try {
        frontend(text);
        parsed++;
      } catch (e) {
        if (!(e instanceof TsbuildError)) throw new Error(`case ${c} threw ${String(e)} for input ${JSON.stringify(text)}`);
        expect(e.code).toMatch(/^[A-Z_]+$/);
        // PARSE_FAILED is the safety net wrapping a non-TsbuildError: reaching it means a parser bug.
        if (e.code === "PARSE_FAILED") throw new Error(`case ${c}: ${e.message} for input ${JSON.stringify(text)}`);
        rejected++;
      }
      const ms = performance.now() - t0;
      if (ms > 500) throw new Error(`case ${c} took ${ms.toFixed(0)} ms for input ${JSON.stringify(text)}`);
    }
    // Both outcomes must actually occur, or the mutations are not exercising the parser.
    expect(parsed).toBeGreaterThan(300);
    expect(rejected).toBeGreaterThan(300);
  });
});
