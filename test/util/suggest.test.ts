// suggest(): the one closest candidate within 2 edits (Damerau-Levenshtein: a swap of neighbours is one edit),
// case-insensitive, ties to the first candidate, none when nothing is that close.
import { describe, expect, test } from "vitest";
import { suggest } from "../../src/util/suggest.js";

describe("suggest", () => {
  test.each([
    ["a swap of two neighbours is one edit", "biuld", ["build", "test"], "build"],
    ["a missing letter", "outlin", ["build", "check", "outline", "targets"], "outline"],
    ["two edits still count", "bild2", ["build"], "build"],
    ["three edits do not", "bxxxd", ["build"], undefined],
    ["case is ignored, the candidate is returned as written", "BUILD", ["build"], "build"],
    ["an exact match is its own suggestion", "test", ["build", "test"], "test"],
    ["the closest wins over an earlier, further one", "buidl", ["bxidx", "build"], "build"],
    ["a tie goes to the first candidate", "ab", ["ax", "xb"], "ax"],
    ["no candidates", "x", [], undefined],
    ["lengths too far apart", "a", ["abcd"], undefined],
  ])("%s", (_what, word, candidates, expected) => {
    expect(suggest(word, candidates)).toBe(expected);
  });
});
