// Env lists read one way: an entry without `=` is the variable with an empty value (BuildKit's BuildEnvs).
import { describe, expect, it } from "vitest";
import { envKey, envMap, lookupEnv, normalizeEnvList, parseEnvEntry, setEnvEntry } from "../../src/image/env.js";

describe("parseEnvEntry", () => {
  it.each([
    ["PATH=/usr/bin", ["PATH", "/usr/bin"]],
    ["EMPTY=", ["EMPTY", ""]],
    ["BARE", ["BARE", ""]],
    ["A=b=c", ["A", "b=c"]],
    ["=value", ["", "value"]],
    ["", ["", ""]],
    ["SP ACE=x y", ["SP ACE", "x y"]],
  ])("%j → %j", (entry, want) => {
    expect(parseEnvEntry(entry)).toEqual(want);
    expect(envKey(entry)).toBe(want[0]);
  });
});

describe("env lists", () => {
  const list = ["PATH=/bin", "BARE", "=nameless", "X=1", "X=2"];
  it("maps later-wins, bare KEY as empty, nameless entries skipped", () => {
    expect([...envMap(list)]).toEqual([
      ["PATH", "/bin"],
      ["BARE", ""],
      ["X", "2"],
    ]);
    expect(lookupEnv(list, "BARE")).toBe("");
    expect(lookupEnv(list, "X")).toBe("2");
    expect(lookupEnv(list, "NOPE")).toBeUndefined();
    expect(lookupEnv(undefined, "PATH")).toBeUndefined();
  });
  it("normalises to KEY=value for a process", () => {
    expect(normalizeEnvList(list)).toEqual(["PATH=/bin", "BARE=", "X=1", "X=2"]);
  });
  it("sets in place (a bare KEY too), appends new keys, never mutates the input", () => {
    const input = ["A=1", "BARE", "B=2"];
    expect(setEnvEntry(input, "BARE", "x")).toEqual(["A=1", "BARE=x", "B=2"]);
    expect(setEnvEntry(input, "A", "9")).toEqual(["A=9", "BARE", "B=2"]);
    expect(setEnvEntry(input, "C", "")).toEqual(["A=1", "BARE", "B=2", "C="]);
    expect(setEnvEntry(undefined, "K", "v")).toEqual(["K=v"]);
    expect(input).toEqual(["A=1", "BARE", "B=2"]);
  });
});
