// The "did you mean" suggester: closest candidate within 2 edits (a swap of neighbours counts as one).
import { describe, expect, it } from "vitest";
import { editDistance, suggest } from "../../src/util/suggest.js";

const COMMANDS = ["build", "parse", "check", "images", "history", "inspect", "tag", "rmi", "save", "load", "prune", "du", "pull", "push", "image", "builder"];

describe("editDistance", () => {
  it.each([
    ["", "", 0],
    ["abc", "abc", 0],
    ["abc", "", 3],
    ["bild", "build", 1],
    ["imgaes", "images", 1], // one swap
    ["kitten", "sitting", 3],
    ["ca", "abc", 3], // optimal string alignment, not full Damerau
  ])("%s → %s = %i", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe("suggest", () => {
  it.each([
    ["bild", "build"],
    ["biuld", "build"],
    ["imgaes", "images"],
    ["imags", "images"],
    ["histroy", "history"],
    ["pul", "pull"],
    ["Build", "build"], // case is ignored
    ["rm", "rmi"],
    ["x", undefined], // 2 edits from du, but that replaces the whole word
    ["ls", undefined],
    ["completely-different", undefined],
    ["build", undefined], // the word itself is no suggestion
  ])("%s → %s", (word, want) => {
    expect(suggest(word, COMMANDS)).toBe(want);
  });

  it("prefers the closest, then the earliest candidate", () => {
    expect(suggest("stage1", ["stage2", "stage1x", "stage"])).toBe("stage2");
    expect(suggest("buidl", ["builder", "build"])).toBe("build");
    expect(suggest("ab", [])).toBeUndefined();
  });

  it("suggests flags and stage names", () => {
    expect(suggest("no-cahce", ["no-cache", "no-cache-filter", "network"])).toBe("no-cache");
    expect(suggest("biulder", ["base", "builder", "final"])).toBe("builder");
  });
});
