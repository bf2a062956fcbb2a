// Parser behaviour, table-driven: each case states the instructions (or the positioned error) it must produce.
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { decodeInstruction } from "../../src/frontend/instructions.js";
import { splitStages, findStage } from "../../src/frontend/stages.js";
import { planBuild, stageDependencies } from "../../src/frontend/plan.js";
import { TsbuildError } from "../../src/errors.js";

const p = (text: string) => parseDockerfile(text, { file: "Dockerfile" });
const brief = (text: string) => p(text).instructions.map((i) => ({ k: i.keyword, f: i.flags, a: i.args, j: i.json }));

function errorOf(text: string): { code: string; line?: number; column?: number; message: string } {
  try {
    const parsed = p(text);
    splitStages(parsed);
    parsed.instructions.forEach(decodeInstruction);
  } catch (e) {
    if (!(e instanceof TsbuildError)) throw e;
    return { code: e.code, line: e.range?.start.line, column: e.range?.start.column, message: e.message };
  }
  throw new Error("expected a parse error");
}

describe("logical lines", () => {
  it("joins continuations keeping whitespace, for both escape characters", () => {
    expect(brief("FROM a\nRUN echo a \\\n  b")).toEqual([
      { k: "FROM", f: [], a: ["a"], j: false },
      { k: "RUN", f: [], a: ["echo a   b"], j: false },
    ]);
    expect(brief("# escape=`\nFROM a\nRUN dir c:\\ `\n  d")[1]).toEqual({ k: "RUN", f: [], a: ["dir c:\\   d"], j: false });
  });

  it("drops comments and empty lines inside continuations, warning about empty ones", () => {
    const r = p("FROM a\nRUN echo \\\n# a comment\n\n  done\n");
    expect(r.instructions[1]?.args).toEqual(["echo   done"]);
    expect(r.warnings.map((w) => [w.code, w.range?.start.line])).toEqual([["NoEmptyContinuation", 4]]);
  });

  it("allows a continuation at the end of the file", () => {
    expect(brief("FROM a\nRUN echo \\")[1]?.a).toEqual(["echo"]);
  });

  it("strips a UTF-8 BOM and handles CRLF", () => {
    expect(brief("\uFEFFFROM a\r\nENV x=1\r\n").map((i) => i.k)).toEqual(["FROM", "ENV"]);
  });

  it("keeps positions of the logical line's first physical line", () => {
    const r = p("\n\n  FROM a\n# c\nRUN x \\\n y\n");
    expect(r.instructions[0]?.range.start).toEqual({ line: 3, column: 3 });
    expect(r.instructions[1]?.range.start).toEqual({ line: 5, column: 1 });
    expect(r.instructions[1]?.range.end.line).toBe(6);
  });
});

describe("directives", () => {
  it("reads syntax, escape and check at the top, case-insensitively", () => {
    const r = p("# syntax=docker/dockerfile:1\n# ESCAPE=`\n#check=skip=all\nFROM a\n");
    expect(r.directives).toEqual({ syntax: "docker/dockerfile:1", escape: "`", check: "skip=all" });
  });
  it("stops at the first non-directive line", () => {
    expect(p("# hello\n# escape=`\nFROM a\n").directives.escape).toBe("\\");
    expect(p("FROM a\n# escape=`\n").directives.escape).toBe("\\");
  });
  it("rejects a duplicate directive and a bad escape", () => {
    expect(errorOf("# escape=\\\n# escape=`\nFROM a")).toMatchObject({ code: "DUPLICATE_DIRECTIVE", line: 2 });
    expect(errorOf("# escape=x\nFROM a")).toMatchObject({ code: "INVALID_ESCAPE", line: 1 });
  });
});

describe("instructions", () => {
  it("recognises all 18 keywords case-insensitively", () => {
    const text = [
      "from a as b",
      "run x",
      "cmd x",
      "label a=b",
      "maintainer m",
      "expose 80",
      "env a=b",
      "add a b",
      "copy a b",
      "entrypoint x",
      "volume /v",
      "user u",
      "workdir /w",
      "arg a",
      "onbuild run x",
      "stopsignal SIGTERM",
      "healthcheck NONE",
      'shell ["sh","-c"]',
    ].join("\n");
    expect(new Set(p(text).instructions.map((i) => i.keyword)).size).toBe(18);
  });

  it("exec form when the rest is a JSON string array, else shell form (BuildKit's fallback)", () => {
    expect(brief('FROM a\nCMD ["a", "b c"]')[1]).toEqual({ k: "CMD", f: [], a: ["a", "b c"], j: true });
    expect(brief("FROM a\nCMD [\"a\", 'b']")[1]).toEqual({ k: "CMD", f: [], a: ["[\"a\", 'b']"], j: false });
    // A JSON array of non-strings is not shell form: BuildKit's parser rejects it (checked with Docker 20.10).
    expect(() => p("FROM a\nRUN [1, 2]")).toThrow(/arrays must be comprised of strings only/);
    expect(() => p('FROM a\nHEALTHCHECK CMD ["a", null]')).toThrow(/arrays must be comprised of strings only/);
  });

  it("parses flags with values, bare boolean flags and quoted values", () => {
    expect(brief("FROM a\nCOPY --from=build --chown=app:app --link a b")[1]).toEqual({
      k: "COPY",
      f: ["--from=build", "--chown=app:app", "--link"],
      a: ["a", "b"],
      j: false,
    });
    expect(brief("FROM a\nRUN --mount=type=cache,target=/c --network=none make")[1]?.a).toEqual(["make"]);
  });

  it("ENV and LABEL key=value pairs keep raw quotes; legacy form takes the rest of the line", () => {
    expect(brief('FROM a\nENV A=1 B="two words" C=x\\ y')[1]?.a).toEqual(["A", "1", "B", '"two words"', "C", "x\\ y"]);
    expect(brief("FROM a\nENV PATH /usr/bin:/bin  with spaces")[1]?.a).toEqual(["PATH", "/usr/bin:/bin  with spaces"]);
    expect(brief('FROM a\nLABEL "a b"="c d"')[1]?.a).toEqual(['"a b"', '"c d"']);
  });

  it("collects heredocs: several per line, <<- strips tabs, quoted delimiters disable expansion, fd prefixes", () => {
    const r = p("FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<-one <<'two' /dst/\n\tfirst\n\tone\nsecond $x\ntwo\nRUN 3<<X cat\nbody\nX\n");
    const [, run, copy, fd] = r.instructions;
    expect(run?.heredocs).toEqual([{ name: "EOF", content: "echo hi\n", expand: true, chomp: false }]);
    expect(copy?.heredocs).toEqual([
      { name: "one", content: "first\n", expand: true, chomp: true },
      { name: "two", content: "second $x\n", expand: false, chomp: false },
    ]);
    expect(fd?.heredocs[0]).toMatchObject({ name: "X", fd: 3 });
    const typed = decodeInstruction(copy!);
    expect(typed).toMatchObject({ kind: "COPY", sources: [], dest: "/dst/" });
  });

  it("ONBUILD nests its trigger", () => {
    const i = p("FROM a\nONBUILD COPY --from=x a b")?.instructions[1];
    expect(i?.trigger?.keyword).toBe("COPY");
    expect(i?.trigger?.flags).toEqual(["--from=x"]);
  });

  it("decodes typed instructions", () => {
    const typed = p(
      'FROM --platform=linux/amd64 img AS Build\nARG A B=2\nHEALTHCHECK --interval=1m30s --retries=3 CMD ["curl", "-f"]\nCOPY --chmod=u+x,g-w a b\nEXPOSE 80/tcp 53/udp\n',
    ).instructions.map(decodeInstruction);
    expect(typed[0]).toMatchObject({ kind: "FROM", image: "img", name: "build", platform: "linux/amd64" });
    expect(typed[1]).toMatchObject({ kind: "ARG", args: [{ name: "A" }, { name: "B", default: "2" }] });
    expect(typed[2]).toMatchObject({ kind: "HEALTHCHECK", none: false, json: true, test: ["CMD", "curl", "-f"], interval: 90e9, retries: 3 });
    expect(typed[3]).toMatchObject({ kind: "COPY", chmod: "u+x,g-w", sources: ["a"], dest: "b" });
    expect(typed[4]).toMatchObject({ kind: "EXPOSE", ports: ["80/tcp", "53/udp"] });
  });
});

describe("errors carry file, line and column", () => {
  const cases: [string, string, { code: string; line: number; column?: number; message?: RegExp }][] = [
    ["unknown instruction", "FROM a\n  COPPY a b\n", { code: "UNKNOWN_INSTRUCTION", line: 2, column: 3, message: /COPPY/ }],
    ["unknown flag", "FROM a\nCOPY --frm=x a b\n", { code: "UNKNOWN_FLAG", line: 2, column: 6 }],
    ["flag on an instruction without flags", "FROM a\nUSER --x u\n", { code: "UNKNOWN_FLAG", line: 2 }],
    ["FROM without image", "FROM\n", { code: "ARITY", line: 1 }],
    ["FROM with AS but no name", "FROM a AS\n", { code: "ARITY", line: 1 }],
    ["FROM a b c", "FROM a b c\n", { code: "ARITY", line: 1, message: /AS/ }],
    ["COPY with one argument", "FROM a\nCOPY onlyone\n", { code: "ARITY", line: 2 }],
    ["WORKDIR without path", "FROM a\nWORKDIR\n", { code: "ARITY", line: 2 }],
    ["STOPSIGNAL with two words", "FROM a\nSTOPSIGNAL a b\n", { code: "ARITY", line: 2 }],
    ["SHELL not JSON", "FROM a\nSHELL /bin/sh -c\n", { code: "SHELL_NOT_JSON", line: 2 }],
    ["ENV pair without =", "FROM a\nENV a=1 b\n", { code: "BAD_KEY_VALUE", line: 2 }],
    ["ENV legacy form without value", "FROM a\nENV a\n", { code: "ARITY", line: 2 }],
    ["ONBUILD ONBUILD", "FROM a\nONBUILD ONBUILD RUN x\n", { code: "BAD_ONBUILD", line: 2 }],
    ["ONBUILD FROM", "FROM a\nONBUILD FROM b\n", { code: "BAD_ONBUILD", line: 2 }],
    ["ONBUILD MAINTAINER", "FROM a\nONBUILD MAINTAINER b\n", { code: "BAD_ONBUILD", line: 2 }],
    ["instruction before FROM", "ENV a=1\nFROM a\n", { code: "NO_FROM", line: 1 }],
    ["duplicate stage", "FROM a AS x\nFROM b AS X\n", { code: "DUPLICATE_STAGE", line: 2 }],
    ["reserved stage name", "FROM a AS scratch\n", { code: "RESERVED_STAGE_NAME", line: 1 }],
    ["unterminated heredoc", "FROM a\nRUN <<EOF\necho\n", { code: "UNTERMINATED_HEREDOC", line: 2 }],
    ["bad chmod", "FROM a\nCOPY --chmod=999 a b\n", { code: "BAD_CHMOD", line: 2 }],
    ["bad duration", "FROM a\nHEALTHCHECK --interval=soon CMD x\n", { code: "BAD_DURATION", line: 2 }],
    ["bad network", "FROM a\nRUN --network=bridge x\n", { code: "BAD_FLAG_VALUE", line: 2 }],
    ["empty file", "\n# only a comment\n\n", { code: "EMPTY_DOCKERFILE", line: 1 }],
    ["line too long", `FROM a\nRUN echo ${"x".repeat(70_000)}\n`, { code: "LINE_TOO_LONG", line: 2 }],
  ];
  for (const [name, text, want] of cases)
    it(name, () => {
      const e = errorOf(text);
      expect(e.code).toBe(want.code);
      expect(e.line).toBe(want.line);
      if (want.column !== undefined) expect(e.column).toBe(want.column);
      if (want.message) expect(e.message).toMatch(want.message);
    });
});

describe("stages", () => {
  const parsed = p(
    "ARG V=1\nFROM a AS Base\nRUN x\nFROM base AS b2\nCOPY --from=0 / /\nFROM scratch\nCOPY --from=b2 / /\nRUN --mount=type=bind,from=base,target=/m x\n",
  );
  const staged = splitStages(parsed);
  it("splits global ARGs and stages, names lower-cased", () => {
    expect(staged.globalArgs).toHaveLength(1);
    expect(staged.stages.map((s) => [s.name, s.base, s.instructions.length])).toEqual([
      ["base", "a", 1],
      ["b2", "base", 1],
      [undefined, "scratch", 2],
    ]);
  });
  it("finds stages by name (any case) or index", () => {
    expect(findStage(staged, "BASE")?.index).toBe(0);
    expect(findStage(staged, "2")?.index).toBe(2);
    expect(findStage(staged, "nope")).toBeUndefined();
  });
  it("derives edges from FROM, COPY --from and RUN --mount from=", () => {
    const deps = stageDependencies(planBuild(parsed, { platform: { os: "linux", architecture: "amd64" } }));
    expect([...(deps.get(1) ?? [])].sort()).toEqual([0]);
    expect([...(deps.get(2) ?? [])].sort()).toEqual([0, 1]);
  });
  it("allows a reference to a later stage (BuildKit registers every stage first) but not to itself", () => {
    const plat = { platform: { os: "linux", architecture: "amd64" } };
    expect(stageDependencies(planBuild(p("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\n"), plat)).get(0)).toEqual(new Set([1]));
    expect(() => planBuild(p("FROM a AS x\nCOPY --from=x / /\n"), plat)).toThrow(TsbuildError);
  });
});

describe("speed", () => {
  it("parses 10,000 lines without quadratic blow-up (correctness of the whole result)", () => {
    const lines = ["FROM a"];
    for (let i = 0; i < 10_000; i++) lines.push(i % 2 ? `RUN echo ${i} && \\\n  echo more` : `ENV K${i}=v${i}`);
    const r = p(lines.join("\n"));
    expect(r.instructions).toHaveLength(10_001);
    expect(r.instructions[9_999]?.args).toEqual(["K9998", "v9998"]);
    expect(r.instructions[10_000]?.args).toEqual(["echo 9999 &&   echo more"]);
  });
});
