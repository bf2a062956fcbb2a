// -e and --env-file as the docker CLI reads them.
import { describe, expect, it } from "vitest";
import { envEntry, parseEnvFile } from "../../src/cli/env-flags.js";

describe("env flags", () => {
  it("-e KEY=VALUE as is, bare KEY from the environment, else left bare (docker unsets it)", () => {
    expect(envEntry("A=b=c", {}, "-e")).toBe("A=b=c");
    expect(envEntry("A=", {}, "-e")).toBe("A=");
    expect(envEntry("HOME", { HOME: "/h" }, "-e")).toBe("HOME=/h");
    expect(envEntry("NOPE", {}, "-e")).toBe("NOPE");
    expect(() => envEntry("=x", {}, "-e =x")).toThrow(/-e =x: no variable name/);
    expect(() => envEntry("A B=1", {}, "-e")).toThrow(/contains whitespace/);
  });
  it("env files: comments, blank lines, leading space, CRLF and a BOM; no quote processing", () => {
    const text = '\uFEFF# comment\r\n\r\n   A=1\r\nB="two"\r\n  # indented comment\nC\nD= spaced \n';
    expect(parseEnvFile(text, "f.env", { C: "from-env" })).toEqual(["A=1", 'B="two"', "C=from-env", "D= spaced "]);
    expect(() => parseEnvFile("OK=1\nBAD KEY=1\n", "f.env", {})).toThrow(/--env-file f\.env:2: variable "BAD KEY"/);
  });
});
