// The key planner's pure pieces and the stage state they read: which env and args a RUN's key covers (ENV wins over
// ARG, a bare KEY is KEY=), and how stage state answers PATH and ENV lookups.
import { describe, expect, test } from "vitest";
import type { ImageConfig } from "../../src/image/types.js";
import { envParts } from "../../src/solver/step-planner.js";
import { expansionEnv, getEnv, setEnv, type StageState } from "../../src/solver/stage-state.js";
import { runEnv } from "../../src/solver/run-instruction.js";

const state = (env: string[], args: [string, string][] = []): StageState => ({
  config: { architecture: "amd64", os: "linux", config: { Env: env }, rootfs: { type: "layers", diff_ids: [] } } as ImageConfig,
  layers: [],
  args: new Map(args),
  cmdSet: false,
  key: "k",
});

describe("key parts of a RUN's environment", () => {
  test("ENV entries and ARGs not shadowed by ENV; a bare KEY is KEY=", () => {
    expect(
      envParts(
        state(
          ["PATH=/bin", "A=1", "BARE"],
          [
            ["A", "arg"],
            ["B", "2"],
          ],
        ),
      ),
    ).toEqual({ "env:PATH": "/bin", "env:A": "1", "env:BARE": "", "arg:B": "2" });
  });

  test("the env a RUN gets matches what its key covers, proxy extras last and over ENV and ARG (BuildKit's order)", () => {
    const s = state(
      ["A=1", "BARE"],
      [
        ["A", "arg"],
        ["B", "2"],
      ],
    );
    expect(runEnv(s, ["HTTP_PROXY=p", "A=x"])).toEqual(["BARE=", "B=2", "HTTP_PROXY=p", "A=x"]);
  });

  test("an ARG declared after an ENV of the same name is what RUN and expansion see, and its key covers it", () => {
    const s = { ...state(["X=env"], [["X", "arg"]]), argsOverEnv: new Set(["X"]) };
    expect(runEnv(s)).toEqual(["X=arg"]);
    expect(expansionEnv(s).get("X")).toBe("arg");
    expect(envParts(s)).toEqual({ "env:X": "env", "arg:X": "arg" });
    // Without the later ARG, ENV wins.
    expect(runEnv(state(["X=env"], [["X", "arg"]]))).toEqual(["X=env"]);
  });
});

describe("stage state", () => {
  test("expansion sees ARGs, overridden by ENV", () => {
    expect([
      ...expansionEnv(
        state(
          ["A=env"],
          [
            ["A", "arg"],
            ["B", "b"],
          ],
        ),
      ),
    ]).toEqual([
      ["A", "env"],
      ["B", "b"],
    ]);
  });

  test("getEnv and setEnv keep Docker's order of first definition", () => {
    const s = state(["PATH=/bin", "A=1"]);
    expect(getEnv(s.config, "PATH")).toBe("/bin");
    expect(getEnv(s.config, "NOPE")).toBeUndefined();
    expect(setEnv(["A=1", "B=2"], "A", "3")).toEqual(["A=3", "B=2"]);
    expect(setEnv(["A=1"], "C", "4")).toEqual(["A=1", "C=4"]);
  });
});
