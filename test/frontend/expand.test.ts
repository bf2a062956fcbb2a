import { describe, expect, it } from "vitest";
import { expandWord, expandWords, expandWordWithInfo } from "../../src/frontend/expand.js";
import { TsbuildError } from "../../src/errors.js";
import type { SourceRange } from "../../src/frontend/types.js";

// The environment of BuildKit's envVarTest table.
const env = { PWD: "/home", SHELL: "bash", KOREAN: "한국어", NULL: "" };

// [input, expected value or "error"] in the style of BuildKit's shell/envVarTest (Unix rows).
const envVarCases: [string, string][] = [
  ["hello", "hello"],
  ["he'll'o", "hello"],
  ["he'llo", "error"],
  ["he\\'llo", "he'llo"],
  ["he\\\\'llo", "error"],
  ["abc\\tdef", "abctdef"],
  ['"abc\\tdef"', "abc\\tdef"],
  ['"abc\\\\tdef"', "abc\\tdef"],
  ["'abc\\tdef'", "abc\\tdef"],
  ["hello\\", "hello"],
  ["hello\\\\", "hello\\"],
  ['"hello', "error"],
  ['"hello\\"', "error"],
  ['"hel\'lo"', "hel'lo"],
  ["'hello", "error"],
  ["'hello\\'", "hello\\"],
  ["'hello\\there'", "hello\\there"],
  ["'hello\\\\there'", "hello\\\\there"],
  ["\"''\"", "''"],
  ["$.", "$."],
  ["he$1x", "hex"],
  ["he$.x", "he$.x"],
  ["he$pwd.", "he."],
  ["he$PWD", "he/home"],
  ["he\\$PWD", "he$PWD"],
  ["he\\\\$PWD", "he\\/home"],
  ['"he\\$PWD"', "he$PWD"],
  ['"he\\\\$PWD"', "he\\/home"],
  ["\\${}", "${}"],
  ["\\${}aaa", "${}aaa"],
  ["he\\${}", "he${}"],
  ["he\\${}xx", "he${}xx"],
  ["${}", "error"],
  ["${}aaa", "error"],
  ["he${}", "error"],
  ["he${}xx", "error"],
  ["he${hi}", "he"],
  ["he${hi}xx", "hexx"],
  ["he${PWD}", "he/home"],
  ["he${.}", "error"],
  ["he${XXX:-000}xx", "he000xx"],
  ["he${PWD:-000}xx", "he/homexx"],
  ["he${XXX:-$PWD}xx", "he/homexx"],
  ["he${XXX:-${PWD:-yyy}}xx", "he/homexx"],
  ["he${XXX:-${YYY:-yyy}}xx", "heyyyxx"],
  ["he${XXX:YYY}", "error"],
  ["he${XXX?}", "error"],
  ["he${XXX:?}", "error"],
  ["he${PWD?}", "he/home"],
  ["he${PWD:?}", "he/home"],
  ["he${NULL?}", "he"],
  ["he${NULL:?}", "error"],
  ["he${XXX:+${PWD}}xx", "hexx"],
  ["he${PWD:+${XXX}}xx", "hexx"],
  ["he${PWD:+${SHELL}}xx", "hebashxx"],
  ["he${XXX:+000}xx", "hexx"],
  ["he${PWD:+000}xx", "he000xx"],
  ["'he${XX}'", "he${XX}"],
  ['"he${PWD}"', "he/home"],
  ["\"he'$PWD'\"", "he'/home'"],
  ['"$PWD"', "/home"],
  ["'$PWD'", "$PWD"],
  ["'\\$PWD'", "\\$PWD"],
  ["'\"hello\"'", '"hello"'],
  ["he\\$PWD", "he$PWD"],
  ['"he\\$PWD"', "he$PWD"],
  ["'he\\$PWD'", "he\\$PWD"],
  ["he${PWD", "error"],
  ["he${PWD=000}xx", "error"],
  ["he${PWD:=000}xx", "error"],
  ["he${PWD+${PWD}:}xx", "he/home:xx"],
  ["he${XXX-${PWD:-yyy}}xx", "he/homexx"],
  ["he${XXX-${YYY:-yyy}}xx", "heyyyxx"],
  ["he${XXX:-${YYY:-${PWD}}}xx", "he/homexx"],
  ["he${NULL-x}y", "hey"],
  ["he${NULL:-x}y", "hexy"],
  ["he${NULL+x}y", "hexy"],
  ["he${NULL:+x}y", "hey"],
  ["가${KOREAN}", "가한국어"],
  ["가$KOREAN", "가한국어"],
  ["$KOREAN가", ""],
  ['"$KOREAN"가', "한국어가"],
  // Special and positional parameters expand to nothing.
  ["a$@b", "ab"],
  ["a$*b", "ab"],
  ["a$#b", "ab"],
  ["a$?b", "ab"],
  ["a$$b", "ab"],
  ["a$!b", "ab"],
  ["a$-b", "ab"],
  ["a$0b", "ab"],
  ["a$12b", "ab"],
  ["a${10}b", "ab"],
  ["a${#}b", "ab"],
  ["a${#PWD}b", "error"],
  // $ followed by something that is not a name stays literal.
  ["a$", "a$"],
  ["a$ b", "a$ b"],
  ["a$/b", "a$/b"],
  ['"a$"', "a$"],
  // Unterminated ${.
  ["${", "error"],
  ["${PWD:-", "error"],
  ['${PWD:-"x}', "error"],
  ["${{PWD}}", "error"],
  ["${:}", "error"],
  // Trimming and replacement.
  ["${PWD#/}", "home"],
  ["${PWD%me}", "/ho"],
  ["${PWD/o/0}", "/h0me"],
];

describe("expandWord (BuildKit envVarTest style)", () => {
  it.each(envVarCases)("%j → %j", (input, want) => {
    if (want === "error") {
      expect(() => expandWord(input, env)).toThrow(TsbuildError);
    } else {
      expect(expandWord(input, env)).toBe(want);
    }
  });

  it("accepts a Map and is case-sensitive", () => {
    const m = new Map([["Foo", "x"]]);
    expect(expandWord("$Foo-$foo-$FOO", m)).toBe("x--");
    expect(expandWord("$constructor$toString", {})).toBe("");
  });
});

// BuildKit's TestProcessWithMatches table.
const matchCases: {
  input: string;
  envs: Record<string, string>;
  expected?: string;
  used?: string[];
  unset?: string[];
}[] = [
  { input: "x", envs: { DUMMY: "dummy" }, expected: "x" },
  { input: "x ${UNUSED}", envs: { DUMMY: "dummy" }, expected: "x ", unset: ["UNUSED"] },
  { input: "x ${FOO}", envs: { FOO: "y" }, expected: "x y", used: ["FOO"] },
  {
    input: "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "xxx  ccc",
    used: ["FOO", "BAR"],
    unset: ["BAZ"],
  },
  {
    input: "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "xxx bbb ccc",
    used: ["FOO", "BAR"],
    unset: ["BAZ"],
  },
  { input: "${FOO:-}", envs: { FOO: "xxx", BAR: "" }, expected: "xxx", used: ["FOO"] },
  { input: "${FOO:-}", envs: {}, expected: "", unset: ["FOO"] },
  {
    input: "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "aaa bbb ",
    used: ["FOO", "BAR"],
    unset: ["BAZ"],
  },
  {
    input: "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
    envs: { FOO: "xxx", BAR: "" },
    expected: "aaa  ",
    used: ["FOO", "BAR"],
    unset: ["BAZ"],
  },
  { input: "${FOO?aaa}", envs: { FOO: "xxx", BAR: "" }, expected: "xxx", used: ["FOO"] },
  { input: "${BAR?bbb}", envs: { FOO: "xxx", BAR: "" }, expected: "", used: ["BAR"] },
  { input: "${BAZ?ccc}", envs: { FOO: "xxx", BAR: "" } },
  { input: "${FOO:?aaa}", envs: { FOO: "xxx", BAR: "" }, expected: "xxx", used: ["FOO"] },
  { input: "${BAR:?bbb}", envs: { FOO: "xxx", BAR: "" } },
  { input: "${BAZ:?ccc}", envs: { FOO: "xxx", BAR: "" } },
  { input: "${BAZ:?}", envs: { FOO: "xxx", BAR: "" } },
  { input: "${FOO=aaa}", envs: { FOO: "xxx", BAR: "" } },
  { input: "${FOO=:aaa}", envs: { FOO: "xxx", BAR: "" } },
  { input: "${FOO=}", envs: {} },
  { input: "${FOO#()[]{\\}^$.\\*\\?|\\\\}", envs: { FOO: "()[]{}^$.*?|\\x" }, expected: "x", used: ["FOO"] },
  { input: "${FOO%%\\**}", envs: { FOO: "xx**" }, expected: "xx", used: ["FOO"] },
  { input: "${FOO#*x*y}", envs: { FOO: "xxyy" }, expected: "y", used: ["FOO"] },
  { input: "${FOO#*}", envs: { FOO: "xxyy" }, expected: "xxyy", used: ["FOO"] },
  { input: "${FOO#$BAR}", envs: { FOO: "xxyy", BAR: "x" }, expected: "xyy", used: ["FOO", "BAR"] },
  { input: "${FOO#$BAR}", envs: { FOO: "xxyy", BAR: "" }, expected: "xxyy", used: ["FOO", "BAR"] },
  { input: "${FOO#}", envs: { FOO: "xxyy" }, expected: "xxyy", used: ["FOO"] },
  { input: "${FOO##*x}", envs: { FOO: "xxyy" }, expected: "yy", used: ["FOO"] },
  { input: "${FOO##}", envs: { FOO: "xxyy" }, expected: "xxyy", used: ["FOO"] },
  { input: "${FOO#?\\?}", envs: { FOO: "???y" }, expected: "?y", used: ["FOO"] },
  { input: "${ABC:-.}${FOO%x}${ABC:-.}", envs: { FOO: "xxyy" }, expected: ".xxyy.", used: ["FOO"], unset: ["ABC"] },
  { input: "${FOO%%\\**\\*}", envs: { FOO: "a***yy*" }, expected: "a", used: ["FOO"] },
  { input: "${FOO%}", envs: { FOO: "xxyy" }, expected: "xxyy", used: ["FOO"] },
  { input: "${FOO%%$BAR}", envs: { FOO: "xxyy", BAR: "" }, expected: "xxyy", used: ["FOO", "BAR"] },
  {
    input: "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
    envs: { FOO: "/foo*/*/*.txt", NEEDLE: "\\*/" },
    expected: "/foo.*/*.txt - /foo..*.txt",
    used: ["FOO", "NEEDLE"],
  },
  {
    input: "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
    envs: { FOO: "/tmp/tmp/bar.txt", NEEDLE: "/tmp" },
    expected: "/tmp/bar.txt - /bar.txt",
    used: ["FOO", "NEEDLE"],
  },
  {
    input: "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
    envs: { FOO: "/a/foo/b/c.txt", NEEDLE: "/?/", REPLACEMENT: "/" },
    expected: "/foo/b/c.txt - /foo/c.txt",
    used: ["FOO", "NEEDLE", "REPLACEMENT"],
  },
  {
    input: "${FOO/$NEEDLE/$REPLACEMENT}",
    envs: { FOO: "http://google.de", NEEDLE: "http://", REPLACEMENT: "https://" },
    expected: "https://google.de",
    used: ["FOO", "NEEDLE", "REPLACEMENT"],
  },
  { input: "${FOO//\\//\\/}", envs: { FOO: "/tmp/foo.txt" }, expected: "\\/tmp\\/foo.txt", used: ["FOO"] },
  { input: "${FOO/$BAR/ww}", envs: { FOO: "xxyy", BAR: "" }, expected: "wwxxyy", used: ["FOO", "BAR"] },
  { input: "${FOO//ww}", envs: { FOO: "xxyy" } },
  { input: "${FOO//}", envs: { FOO: "xxyy" } },
  { input: "${FOO///}", envs: { FOO: "xxyy" }, expected: "xxyy", used: ["FOO"] },
  { input: "${FOO///}", envs: {}, expected: "", unset: ["FOO"] },
  {
    input: "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
    envs: { VERSION: "v1.2.3", TARGETOS: "linux", TARGETARCH: "arm", TARGETVARIANT: "v7" },
    expected: "something-v1.2.3.linux-arm-v7.tar.gz",
    used: ["VERSION", "TARGETOS", "TARGETARCH", "TARGETVARIANT"],
  },
];

describe("expandWordWithInfo (BuildKit TestProcessWithMatches)", () => {
  it.each(matchCases)("$input", ({ input, envs, expected, used = [], unset = [] }) => {
    if (expected === undefined) {
      expect(() => expandWordWithInfo(input, envs)).toThrow(TsbuildError);
      return;
    }
    const r = expandWordWithInfo(input, envs);
    expect(r.value).toBe(expected);
    expect([...r.used].sort()).toEqual([...used].sort());
    expect([...r.unset].sort()).toEqual([...unset].sort());
  });
});

describe("trimming and replacement details", () => {
  const e = { x: "a/b/c.tar.gz", y: "aaa", z: "xxyy", R: "[$$]", Q: "<${0}>" };
  it.each([
    ["${x#*/}", "b/c.tar.gz"],
    ["${x##*/}", "c.tar.gz"],
    ["${x%.*}", "a/b/c.tar"],
    ["${x%%.*}", "a/b/c"],
    ["${x%/*}", "a/b"],
    ["${x%%/*}", "a"],
    ["${y//a/b}", "bbb"],
    ["${y/a/b}", "baa"],
    ["${y//a*/b}", "b"],
    ["${y/?/-}", "-aa"],
    ["${y//x/-}", "aaa"],
    ["${z//x*/-}", "-"],
    ["${z//x?/-}", "-yy"],
    ["${y//$/-}", "aaa"],
    // Go's ReplaceAllString: an empty match right after a match is skipped; $0 is the match.
    ["${z//*/-}", "-"],
    ["${y//a/$R}", "[$][$][$]"],
    ["${y//a/$Q}", "<a><a><a>"],
    ["${y//a/<\\$0>}", "<\\a><\\a><\\a>"],
    ['${y//a/"[$$]"}', "[][][]"],
    ["${x/\\/b/}", "a/c.tar.gz"],
    ["${UNSET#a}", ""],
    ["${UNSET/a/b}", ""],
  ])("%j → %j", (input, want) => {
    expect(expandWord(input, e)).toBe(want);
  });

  it("rejects invalid escapes in patterns", () => {
    expect(() => expandWord("${x#\\a}", e)).toThrow(/invalid pattern/);
    expect(() => expandWord("${z//\\$0/-}", e)).toThrow(/invalid escape/);
  });
});

describe("errors", () => {
  const range: SourceRange = { file: "Dockerfile", start: { line: 3, column: 1 }, end: { line: 3, column: 20 } };
  const catchErr = (fn: () => unknown): TsbuildError => {
    try {
      fn();
    } catch (e) {
      if (e instanceof TsbuildError) return e;
      throw e;
    }
    throw new Error("expected an error");
  };

  it("${v:?msg} and ${v?msg} carry the message (after expansion)", () => {
    const err = catchErr(() => expandWord("${VAR:?message here$ARG}", { ARG: "x" }, { range }));
    expect(err.code).toBe("UNSET_VARIABLE");
    expect(err.message).toBe("VAR: message herex");
    expect(err.range).toEqual(range);
    expect(catchErr(() => expandWord("${VAR:?message here$ARG}", { VAR: "", ARG: "x" })).message).toBe("VAR: message herex");
    expect(expandWord("${VAR?message here$ARG}", { VAR: "", ARG: "x" })).toBe("");
    expect(expandWord("${VAR?msg}", { VAR: "plain" })).toBe("plain");
  });

  it("default messages", () => {
    expect(catchErr(() => expandWord("${v?}", {})).message).toBe("v: is not allowed to be unset");
    expect(catchErr(() => expandWord("${v:?}", { v: "" })).message).toBe("v: is not allowed to be empty");
  });

  it("assignments are unsupported modifiers", () => {
    const err = catchErr(() => expandWord("${v:=w}", {}));
    expect(err.code).toBe("BAD_SUBSTITUTION");
    expect(err.message).toBe("unsupported modifier (:=) in substitution");
    expect(catchErr(() => expandWord("${v=w}", {})).message).toBe("unsupported modifier (=) in substitution");
  });

  it("syntax errors", () => {
    expect(catchErr(() => expandWord("${}", {})).message).toBe("syntax error: bad substitution");
    expect(catchErr(() => expandWord("${v", {})).message).toBe("syntax error: missing '}'");
    expect(catchErr(() => expandWord("${v:-x", {})).message).toBe("syntax error: missing '}'");
    expect(catchErr(() => expandWord("${v/x", {})).message).toBe("syntax error: missing '/' in ${}");
    expect(catchErr(() => expandWord("'abc", {}, { range })).range).toEqual(range);
    expect(catchErr(() => expandWord('"abc', {})).message).toMatch(/double-quote/);
  });
});

describe("backtick escape (# escape=`)", () => {
  const o = { escape: "`" };
  it.each([
    ["he`$PWD", "he$PWD"],
    ["he\\$PWD", "he\\/home"],
    ['"a`"b"', 'a"b'],
    ['"a\\"b', "a\\b"],
    ["c:\\path\\to", "c:\\path\\to"],
    ["a``b", "a`b"],
    ['"a``b"', "a`b"],
    ['"a`xb"', "a`xb"],
    ["a` b", "a b"],
    ["hello`", "hello"],
    ["'a`b'", "a`b"],
    ["${PWD:-x}", "/home"],
    ["${XX:-`}}", "}"],
  ])("%j → %j", (input, want) => {
    if (want === "error") expect(() => expandWord(input, env, o)).toThrow(TsbuildError);
    else expect(expandWord(input, env, o)).toBe(want);
  });
});

// BuildKit's shell/wordsTest table: [input, words or "error"], with envs accumulated in order.
describe("expandWords (BuildKit wordsTest)", () => {
  const wenv = {
    hi: "hi",
    space: "abc  def",
    leading: "  ab c",
    trailing: "ab c   ",
  };
  it.each([
    ["hello", ["hello"]],
    ["hello${hi}bye", ["hellohibye"]],
    ["hello${space}bye", ["helloabc", "defbye"]],
    ['hello"${space}"bye', ["helloabc  defbye"]],
    ['hello "${space}"bye', ["hello", "abc  defbye"]],
    ["hello${leading}def", ["hello", "ab", "cdef"]],
    ['hello"${leading}" def', ["hello  ab c", "def"]],
    ['hello"${leading}"', ["hello  ab c"]],
    ["hello${leading}", ["hello", "ab", "c"]],
    ["hello${trailing}", ["helloab", "c"]],
    ["hello${trailing}d", ["helloab", "c", "d"]],
    ['hello"${trailing}"d', ["helloab c   d"]],
    ['hel"lo${trailing}"', ["helloab c   "]],
    ['hello" there  "', ["hello there  "]],
    ["hello there     ", ["hello", "there"]],
    ["hello\\ there", ["hello there"]],
    ['hello" there', "error"],
    ['hello\\" there', ['hello"', "there"]],
    ['hello"\\\\there"', ["hello\\there"]],
    ['hello"\\there"', ["hello\\there"]],
    ["hello'\\\\there'", ["hello\\\\there"]],
    ["hello'\\there'", ["hello\\there"]],
    ["hello'$there'", ["hello$there"]],
    // Beyond the table.
    ["  a \t b\nc  ", ["a", "b", "c"]],
    ["", []],
    ["${UNSET}", []],
    ["a '' b", ["a", "b"]],
    ['"" x', ["x"]],
    ["'a b' c", ["a b", "c"]],
    ["${hi:-a b}", ["hi"]],
    ["${nope:-a b}", ["a", "b"]],
    ['"${nope:-a b}"', ["a b"]],
  ] as [string, string[] | "error"][])("%j → %j", (input, want) => {
    if (want === "error") expect(() => expandWords(input, wenv)).toThrow(TsbuildError);
    else expect(expandWords(input, wenv)).toEqual(want);
  });
});

// BuildKit's ExpandRaw (COPY/ADD heredoc bodies): SkipProcessQuotes, so quotes are text and only $ and \ act.
describe("expandWord with skipProcessQuotes", () => {
  const env = { NAME: "world" };
  it.each([
    [`echo "hello $NAME"`, `echo "hello world"`],
    [`it's '$NAME'`, `it's 'world'`],
    [`\\$NAME and \\"`, `$NAME and "`],
    [`a\\nb`, `anb`],
    ["${NAME:-x} ${UNSET:-'d'}", "world 'd'"],
  ])("%j → %j", (input, want) => {
    expect(expandWord(input, env, { skipProcessQuotes: true })).toBe(want);
  });
});

// The lexer keeps the blanks after `<<` in that word (processPossibleHeredoc), so `<< EOF` splits as one word.
describe("expandWords and <<", () => {
  it.each([
    ["cat << EOF x", ["cat", "<< EOF", "x"]],
    ["a < b", ["a", "<", "b"]],
    ["a <<<b", ["a", "<<<b"]],
  ])("%j → %j", (input, want) => {
    expect(expandWords(input, {})).toEqual(want);
  });
});
