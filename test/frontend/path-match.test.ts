import { describe, expect, it } from "vitest";
import { compileGoPattern, goMatch, hasMeta } from "../../src/frontend/path-match.js";
import { TsbuildError } from "../../src/errors.js";

// Cases from Go's path/filepath match tests: [pattern, name, match, or "bad" for ErrBadPattern].
const cases: [string, string, boolean | "bad"][] = [
  ["abc", "abc", true],
  ["*", "abc", true],
  ["*c", "abc", true],
  ["a*", "a", true],
  ["a*", "abc", true],
  ["a*", "ab/c", false],
  ["a*/b", "abc/b", true],
  ["a*/b", "a/c/b", false],
  ["a*b*c*d*e*/f", "axbxcxdxe/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false],
  ["a*b?c*x", "abxbbxdbxebxczzx", true],
  ["a*b?c*x", "abxbbxdbxebxczzy", false],
  ["ab[c]", "abc", true],
  ["ab[b-d]", "abc", true],
  ["ab[e-g]", "abc", false],
  ["ab[^c]", "abc", false],
  ["ab[^b-d]", "abc", false],
  ["ab[^e-g]", "abc", true],
  ["a\\*b", "a*b", true],
  ["a\\*b", "ab", false],
  ["a?b", "a☺b", true],
  ["a[^a]b", "a☺b", true],
  ["a???b", "a☺b", false],
  ["a[^a][^a][^a]b", "a☺b", false],
  ["[a-ζ]*", "α", true],
  ["*[a-ζ]", "A", false],
  ["a?b", "a/b", false],
  ["a*b", "a/b", false],
  ["[\\]a]", "]", true],
  ["[\\-]", "-", true],
  ["[x\\-]", "x", true],
  ["[x\\-]", "-", true],
  ["[x\\-]", "z", false],
  ["[\\-x]", "x", true],
  ["[\\-x]", "-", true],
  ["[\\-x]", "a", false],
  ["[]a]", "]", "bad"],
  ["[-]", "-", "bad"],
  ["[x-]", "x", "bad"],
  ["[x-]", "-", "bad"],
  ["[-x]", "x", "bad"],
  ["\\", "a", "bad"],
  ["[a-b-c]", "a", "bad"],
  ["[", "a", "bad"],
  ["[^", "a", "bad"],
  ["[^bc", "a", "bad"],
  ["a[", "a", "bad"],
  ["a[", "ab", "bad"],
  ["a[", "x", "bad"],
  ["a/b[", "x", "bad"],
  ["[]", "a", "bad"],
  ["[^]", "a", "bad"],
  ["*x", "xxx", true],
  // Beyond Go's table: regex metacharacters are literal, `!` does not negate, classes may match `/`.
  ["a.c", "abc", false],
  ["a.c", "a.c", true],
  ["(a|b)+", "(a|b)+", true],
  ["{a,b}", "a", false],
  ["$x^", "$x^", true],
  ["[!a]", "!", true],
  ["[!a]", "b", false],
  ["a[/]b", "a/b", true],
  ["a[^x]b", "a/b", true],
  ["[z-a]", "m", false],
  ["x[^z-a]", "xq", true],
  ["\\a\\b", "ab", true],
  ["", "", true],
  ["", "a", false],
  ["*", "", true],
  ["?", "", false],
  ["a*", "a\nb", true],
  ["😀?", "😀😀", true],
];

describe("goMatch", () => {
  it.each(cases)("%j vs %j → %j", (pattern, name, want) => {
    if (want === "bad") {
      expect(() => goMatch(pattern, name)).toThrow(TsbuildError);
      try {
        goMatch(pattern, name);
      } catch (e) {
        expect((e as TsbuildError).code).toBe("BAD_PATTERN");
      }
    } else {
      expect(goMatch(pattern, name)).toBe(want);
    }
  });

  it("compiles once and reuses", () => {
    const m = compileGoPattern("*.go");
    expect(m("main.go")).toBe(true);
    expect(m("main.ts")).toBe(false);
    expect(m("dir/main.go")).toBe(false);
  });

  it("rejects bad patterns at compile time", () => {
    expect(() => compileGoPattern("a[")).toThrow(/syntax error in pattern/);
  });
});

describe("hasMeta", () => {
  it.each([
    ["abc", false],
    ["a*c", true],
    ["a?c", true],
    ["a[b]", true],
    ["a\\b", true],
    ["a]b", false],
    ["a.b/c", false],
  ] as const)("%j → %j", (p, want) => {
    expect(hasMeta(p)).toBe(want);
  });
});
