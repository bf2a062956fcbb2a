// runQuiet never rejects: exit codes, captured output, and a missing command reported as spawnError.
import { describe, expect, it } from "vitest";
import { runQuiet } from "../../src/util/run.js";
import { errnoCode } from "../../src/util/errno.js";

describe("runQuiet", () => {
  it("captures output and the exit status", async () => {
    expect(await runQuiet("sh", ["-c", "echo out; echo err >&2; exit 3"])).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    expect(await runQuiet("true", [])).toEqual({ code: 0, stdout: "", stderr: "" });
  });
  it("resolves with spawnError when the command does not exist", async () => {
    expect(await runQuiet("/nonexistent/tsbuild-no-such-tool", [])).toMatchObject({ code: -1, spawnError: "ENOENT" });
  });
});

describe("errnoCode", () => {
  it.each([
    [Object.assign(new Error("x"), { code: "ENOENT" }), "ENOENT"],
    [Object.assign(new Error("x"), { code: "ERR_STREAM_PREMATURE_CLOSE" }), undefined],
    [new Error("plain"), undefined],
    [undefined, undefined],
    [null, undefined],
    ["ENOENT", undefined],
  ])("%o → %s", (e, want) => {
    expect(errnoCode(e)).toBe(want);
  });
});
