// Explaining a miss: each changed part is named in words, files by path, the parent last.
import { describe, expect, it } from "vitest";
import { explainMiss, type ExplainRecord } from "../../src/cache/explain.js";

const prev: ExplainRecord = {
  v: 1,
  key: "k",
  parts: { instruction: "RUN make", "arg:V": "1", "env:MODE": "dev", parent: "p1", files: "d1" },
  files: { files: { "0:src/a.c": "f:644:0:0:aa", "0:src/b.c": "f:644:0:0:bb", "0:src/gone.c": "f:644:0:0:cc" } },
};

describe("explainMiss", () => {
  it("says there is no earlier build", () => {
    expect(explainMiss(undefined, { parts: {} })).toEqual(["no earlier build of this step is recorded"]);
  });
  it("names instruction, arg and env changes, and puts the earlier step last", () => {
    const r = explainMiss(prev, { parts: { ...prev.parts, instruction: "RUN make all", "arg:V": "2", "env:MODE": "prod", parent: "p2" }, files: prev.files! });
    expect(r).toEqual([
      'build arg V changed: "1" → "2"',
      'environment variable MODE changed: "dev" → "prod"',
      'instruction changed: "RUN make" → "RUN make all"',
      "an earlier step changed",
    ]);
  });
  it("names changed, added and removed files by path", () => {
    const files = { files: { "0:src/a.c": "f:644:0:0:XX", "0:src/b.c": "f:644:0:0:bb", "0:src/new.c": "f:644:0:0:dd" } };
    const r = explainMiss(prev, { parts: { ...prev.parts, files: "d2" }, files });
    expect(r).toEqual(["files changed: src/a.c; added: src/new.c; removed: src/gone.c"]);
  });
  it("lists at most five paths", () => {
    const many = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`0:f${i}`, `f:644:0:0:${i}`]));
    const after = Object.fromEntries(Object.keys(many).map((k) => [k, "f:644:0:0:new"]));
    const r = explainMiss({ ...prev, parts: { files: "a" }, files: { files: many } }, { parts: { files: "b" }, files: { files: after } });
    expect(r[0]).toBe("files changed: f0, f1, f2, f3, f4 (+3 more)");
  });
  it("reports a missing result when nothing differs", () => {
    expect(explainMiss(prev, { parts: prev.parts })[0]).toMatch(/missing from the store/);
  });
});
