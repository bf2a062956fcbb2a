import { describe, expect, it } from "vitest";
import { cleanPath, compileDockerignore, dockerignoreFileFor, matchesDockerignore, parseDockerignore } from "../../src/frontend/dockerignore.js";
import { TsbuildError } from "../../src/errors.js";

describe("parseDockerignore", () => {
  it("skips comments and blank lines, trims, cleans and strips leading slashes", () => {
    const text = [
      "# a comment",
      "",
      "   ",
      "  node_modules  ",
      "./a",
      "/b",
      "c/",
      "d/../e",
      "!  /keep.txt",
      "!./f/./g",
      "/",
      "  # not a comment (moby checks # before trimming)",
      "x\r",
    ].join("\n");
    expect(parseDockerignore(text)).toEqual([
      "node_modules",
      "a",
      "b",
      "c",
      "e",
      "!keep.txt",
      "!f/g",
      "/",
      "# not a comment (moby checks # before trimming)",
      "x",
    ]);
  });

  it("strips a UTF-8 BOM and handles a final newline", () => {
    expect(parseDockerignore("\uFEFF*.go\n!main.go\n")).toEqual(["*.go", "!main.go"]);
  });

  it("keeps a lone ! (compiling it is the error)", () => {
    expect(parseDockerignore("!\n")).toEqual(["!"]);
    expect(() => compileDockerignore(["!"])).toThrow(/illegal exclusion pattern/);
  });
});

describe("cleanPath", () => {
  it.each([
    ["", "."],
    [".", "."],
    ["./a/", "a"],
    ["a//b/./c/..", "a/b"],
    ["../a", "../a"],
    ["/../a", "/a"],
    ["/", "/"],
    ["a/b/../../..", ".."],
  ])("%j → %j", (input, want) => {
    expect(cleanPath(input)).toBe(want);
  });
});

// moby/patternmatcher TestMatches: [pattern, path, matches (directly or through a parent)].
const single: [string, string, boolean][] = [
  ["**", "file", true],
  ["**", "file/", true],
  ["**/", "file", true],
  ["**", "dir/file", true],
  ["**/", "dir/file", true],
  ["**/**", "dir/file", true],
  ["dir/**", "dir/file", true],
  ["dir/**", "dir/dir2/file", true],
  ["**/dir", "dir", true],
  ["**/dir", "dir/file", true],
  ["**/dir2/*", "dir/dir2/file", true],
  ["**/dir2/*", "dir/dir2/file/", true],
  ["**/dir2/**", "dir/dir2/dir3/file", true],
  ["**file", "file", true],
  ["**file", "dir/file", true],
  ["**/file", "dir/file", true],
  ["**file", "dir/dir/file", true],
  ["**/file", "dir/dir/file", true],
  ["**/file*", "dir/dir/file", true],
  ["**/file*", "dir/dir/file.txt", true],
  ["**/file*txt", "dir/dir/file.txt", true],
  ["**/file*.txt", "dir/dir/file.txt", true],
  ["**/file*.txt*", "dir/dir/file.txt", true],
  ["**/**/*.txt", "dir/dir/file.txt", true],
  ["**/**/*.txt2", "dir/dir/file.txt", false],
  ["**/*.txt", "file.txt", true],
  ["**/**/*.txt", "file.txt", true],
  ["a**/*.txt", "a/file.txt", true],
  ["a**/*.txt", "a/dir/file.txt", true],
  ["a**/*.txt", "a/dir/dir/file.txt", true],
  ["a/*.txt", "a/dir/file.txt", false],
  ["a/*.txt", "a/file.txt", true],
  ["a/*.txt**", "a/file.txt", true],
  ["a[b-d]e", "ae", false],
  ["a[b-d]e", "ace", true],
  ["a[b-d]e", "aae", false],
  ["a[^b-d]e", "aze", true],
  [".*", ".foo", true],
  [".*", "foo", false],
  ["abc.def", "abcdef", false],
  ["abc.def", "abc.def", true],
  ["abc.def", "abcZdef", false],
  ["abc?def", "abcZdef", true],
  ["abc?def", "abcdef", false],
  ["**/foo/bar", "foo/bar", true],
  ["**/foo/bar", "dir/foo/bar", true],
  ["**/foo/bar", "dir/dir2/foo/bar", true],
  ["abc/**", "abc", false],
  ["abc/**", "abc/def", true],
  ["abc/**", "abc/def/ghi", true],
  ["**/.foo", ".foo", true],
  ["**/.foo", "bar.foo", false],
  ["a(b)c/def", "a(b)c/def", true],
  ["a(b)c/def", "a(b)c/xyz", false],
  ["a.|)$(}+{bc", "a.|)$(}+{bc", true],
  ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
  ["a\\\\", "a\\", true],
  ["a\\*b", "a*b", true],
  // Go filepath.Match table through the parent-matching rule (so "a*" also covers "ab/c").
  ["*", "abc", true],
  ["a*", "ab/c", true],
  ["a*/b", "a/c/b", false],
  ["ab[^c]", "abc", false],
  ["a?b", "a☺b", true],
  ["a???b", "a☺b", false],
  ["*x", "xxx", true],
  // Common .dockerignore lines from the Dockerfile reference.
  ["*/temp*", "somedir/temporary.txt", true],
  ["*/temp*", "somedir/temp", true],
  ["*/temp*", "temp", false],
  ["*/*/temp*", "somedir/subdir/temporary.txt", true],
  ["*/*/temp*", "somedir/temporary.txt", false],
  ["temp?", "tempa", true],
  ["temp?", "tempab", false],
  ["temp?", "temp", false],
  ["**/*.go", "main.go", true],
  ["**/*.go", "pkg/sub/x.go", true],
  ["**/*.go", "pkg/sub/x.gox", false],
  ["node_modules", "node_modules/lodash/index.js", true],
  ["node_modules", "src/node_modules/x", false],
  ["./a", "a", true],
  ["/a", "a/b", true],
  ["a/", "a/b", true],
  // Rooted at the context root: a plain name matches only there, `**/` reaches any depth, a leading `/` changes nothing.
  ["a.txt", "x/a.txt", false],
  ["/a.txt", "x/a.txt", false],
  ["*/a.txt", "x/a.txt", true],
  ["*/a.txt", "x/y/a.txt", false],
  ["**/a.txt", "x/y/a.txt", true],
  ["/**/a.txt", "a.txt", true],
  ["/**", "x/y", true],
  ["./**/", "x", true],
  ["**/build-out", "build-out/n/i.js", true],
  ["**/build-out", "x/y/build-out/j.js", true],
  ["**/build-out", "x/build-outs", false],
  ["vendor/**", "vendor", false],
  ["vendor/**", "vendor/lib/z.go", true],
  ["src/**/*_test.go", "src/x_test.go", true],
  ["src/**/*_test.go", "src/util/deep/x_test.go", true],
  ["src/**/*_test.go", "x/src/util/x_test.go", false],
];

describe("matchesDockerignore (single pattern)", () => {
  it.each(single)("%j vs %j → %j", (pattern, path, want) => {
    expect(matchesDockerignore([pattern], path)).toBe(want);
  });
});

const multi: [string[], string, boolean][] = [
  [["**", "!util/docker/web"], "util/docker/web/foo", false],
  [["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true],
  [["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false],
  [["!fileutils.go", "*.go"], "fileutils.go", true],
  [["*.go", "!fileutils.go"], "fileutils.go", false],
  [["docs", "!docs/README.md"], "docs/README.md", false],
  [["docs", "!docs/README.md"], "docs/other.md", true],
  [["docs/*", "!docs/README.md"], "docs/README.md", false],
  [["*.md", "!README*.md", "README-secret.md"], "README-secret.md", true],
  [["*.md", "!README*.md", "README-secret.md"], "README.md", false],
  [["*.md", "!README*.md", "README-secret.md"], "CHANGES.md", true],
  [["*.md", "README-secret.md", "!README*.md"], "README-secret.md", false],
  [["*.go"], ".", false],
  [[], "any/path", false],
  [["#x", "", "   "], "#x", true],
  [["Dockerfile", ".dockerignore"], "Dockerfile", true],
  [["Dockerfile", ".dockerignore"], ".dockerignore", true],
  // fixtures/parity/dockerignore-globstar and -rooted, path by path (the walk's result is pinned there).
  [["**", "!**/*.go", "**/*_test.go"], "src/util/helper.go", false],
  [["**", "!**/*.go", "**/*_test.go"], "src/util/helper_test.go", true],
  [["**", "!keep"], "keep/deep/y.md", false],
  [["**", "/docs", "!/docs/sub/**"], "docs/sub", true],
  [["**", "/docs", "!/docs/sub/**"], "docs/sub/z.md", false],
  [["**", "!**/*.go", "vendor/**", "!vendor/keep/**", "vendor/keep/*.txt"], "vendor/lib/z.go", true],
  [["**", "!**/*.go", "vendor/**", "!vendor/keep/**", "vendor/keep/*.txt"], "vendor/keep/k.go", false],
  [["**", "!**/*.go", "vendor/**", "!vendor/keep/**", "vendor/keep/*.txt"], "vendor/keep/notes.txt", true],
  [["**/*.md", "!docs/**"], "docs/sub/z.md", false],
  [["**/*.md", "!docs/**"], "src/README.md", true],
];

describe("matchesDockerignore (pattern lists)", () => {
  it.each(multi)("%j vs %j → %j", (patterns, path, want) => {
    expect(matchesDockerignore(patterns, path)).toBe(want);
  });

  it("rejects malformed patterns with BAD_PATTERN", () => {
    for (const bad of ["[", "a[", "\\", "[]a]", "!["]) {
      let err: unknown;
      try {
        compileDockerignore([bad]);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(TsbuildError);
      expect((err as TsbuildError).code).toBe("BAD_PATTERN");
    }
  });

  it("normalises the queried path", () => {
    const m = compileDockerignore(["a/b"]);
    expect(m.matches("./a/b/c")).toBe(true);
    expect(m.matches("/a/b")).toBe(true);
    expect(m.matches("a//b")).toBe(true);
  });
});

describe("mayReinclude", () => {
  it("is false without exceptions", () => {
    const m = compileDockerignore(["node_modules", "*.log"]);
    expect(m.matches("node_modules")).toBe(true);
    expect(m.mayReinclude("node_modules")).toBe(false);
  });

  it.each([
    [["a", "!a/keep.txt"], "a", true],
    [["a", "!a/keep.txt"], "b", false],
    [["a", "!b/keep.txt"], "a", false],
    [["a", "!a/*/keep.txt"], "a", true],
    [["a", "!a/*/keep.txt"], "a/x", true],
    [["a", "!a/*/keep.txt"], "a/x/y", false],
    [["a", "!*/keep.txt"], "a", true],
    [["a", "!*/keep.txt"], "a/b", false],
    [["a", "!**/keep.txt"], "a/b/c", true],
    [["a", "!x/**/keep"], "a", false],
    [["x", "!x/**/keep"], "x/deep/er", true],
    [["a", "!a/**"], "a", true],
    [["a", "!a**"], "a", true],
    [["ab", "!a**"], "ab", true],
    [["b", "!a**"], "b", false],
    [["a", "![ab]/k"], "a", true],
    [["c", "![ab]/k"], "c", false],
    [["a", "!a?/k"], "a", false],
    [["a", "!a\\*/k"], "a", false],
    [["a*", "!a\\*/k"], "a*", true],
  ] as [string[], string, boolean][])("%j under %j → %j", (patterns, dir, want) => {
    expect(compileDockerignore(patterns).mayReinclude(dir)).toBe(want);
  });

  it("never says no when a child really is re-included", () => {
    const patterns = ["a", "!a/*/keep*", "!**/x/y"];
    const m = compileDockerignore(patterns);
    for (const [dir, child] of [
      ["a", "a/b/keep.txt"],
      ["a/b", "a/b/keep.txt"],
      ["a", "a/q/x/y/z"],
    ] as const) {
      expect(m.matches(dir)).toBe(true);
      expect(m.matches(child)).toBe(false);
      expect(m.mayReinclude(dir)).toBe(true);
    }
  });
});

describe("dockerignoreFileFor", () => {
  it("appends .dockerignore to the Dockerfile path", () => {
    expect(dockerignoreFileFor("Dockerfile")).toBe("Dockerfile.dockerignore");
    expect(dockerignoreFileFor("build/app.Dockerfile")).toBe("build/app.Dockerfile.dockerignore");
  });
});

describe("mayReinclude soundness (deterministic random check)", () => {
  it("never lets a walker skip a directory holding an included path", () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const segs = ["a", "b", "ab", "*", "?", "a*", "**", "[ab]", "b?"];
    const names = ["a", "b", "ab", "ba", "bb"];
    const pick = <T>(xs: T[]): T => xs[rand(xs.length)] as T;
    const paths: string[] = [];
    for (const x of names) {
      paths.push(x);
      for (const y of names) {
        paths.push(`${x}/${y}`);
        for (const z of names) paths.push(`${x}/${y}/${z}`);
      }
    }
    for (let round = 0; round < 300; round++) {
      const patterns: string[] = [];
      const count = 1 + rand(4);
      for (let i = 0; i < count; i++) {
        const depth = 1 + rand(3);
        const p = Array.from({ length: depth }, () => pick(segs)).join("/");
        patterns.push(rand(2) === 0 ? `!${p}` : p);
      }
      const m = compileDockerignore(patterns);
      for (const dir of paths) {
        if (!m.matches(dir) || m.mayReinclude(dir)) continue;
        for (const child of paths) {
          if (child.startsWith(`${dir}/`)) expect(m.matches(child), `${patterns.join(" ")} | ${dir} → ${child}`).toBe(true);
        }
      }
    }
  });
});
