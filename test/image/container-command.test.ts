// docker run's argv and environment rules (moby's merge(), mergeAndVerifyConfig() and ReplaceOrAppendEnvValues).
import { describe, expect, it } from "vitest";
import { containerArgv, containerEnv, overlayEnv } from "../../src/image/container-command.js";
import { UsageError } from "../../src/errors.js";

const PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

describe("containerArgv", () => {
  const both = { Entrypoint: ["/ep", "x"], Cmd: ["c1", "c2"] };
  it("ENTRYPOINT + CMD, arguments replacing CMD", () => {
    expect(containerArgv(both, "img")).toEqual(["/ep", "x", "c1", "c2"]);
    expect(containerArgv(both, "img", { args: ["a"] })).toEqual(["/ep", "x", "a"]);
    expect(containerArgv({ Cmd: ["sh"] }, "img", { args: ["echo", "hi"] })).toEqual(["echo", "hi"]);
    expect(containerArgv({ Cmd: ["/bin/sh", "-c", "echo $HOME"] }, "img")).toEqual(["/bin/sh", "-c", "echo $HOME"]);
  });
  it('--entrypoint replaces ENTRYPOINT and drops CMD; "" resets it', () => {
    expect(containerArgv(both, "img", { entrypoint: "/other" })).toEqual(["/other"]);
    expect(containerArgv(both, "img", { entrypoint: "/other", args: ["a"] })).toEqual(["/other", "a"]);
    expect(containerArgv(both, "img", { entrypoint: "", args: ["a", "b"] })).toEqual(["a", "b"]);
  });
  it("no command is docker's 'no command specified'", () => {
    expect(() => containerArgv({}, "img")).toThrow(/no command specified: image img has no ENTRYPOINT or CMD/);
    expect(() => containerArgv(both, "img", { entrypoint: "" })).toThrow(UsageError);
    try {
      containerArgv(undefined, "img");
    } catch (e) {
      expect((e as UsageError).code).toBe("NO_COMMAND");
      expect((e as UsageError).hint).toMatch(/tsbuild run img COMMAND/);
    }
  });
});

describe("containerEnv", () => {
  it("PATH and HOSTNAME by default, TERM with a tty, HOME from the user", () => {
    expect(containerEnv({}, { hostname: "abc" })).toEqual([PATH, "HOSTNAME=abc", "HOME=/"]);
    expect(containerEnv({}, { hostname: "abc", tty: true, home: "/root" })).toEqual([PATH, "HOSTNAME=abc", "TERM=xterm", "HOME=/root"]);
  });
  it("the image's Env over the defaults, -e over the image's, a bare -e KEY unsetting it", () => {
    const env = containerEnv({ Env: ["PATH=/bin", "A=1", "B=2", "BARE"] }, { hostname: "h", env: ["B=3", "C=4", "A", "C=5", "HOME=/x"] });
    expect(env).toEqual(["PATH=/bin", "HOSTNAME=h", "B=3", "BARE=", "C=5", "HOME=/x"]);
  });
  it("overlayEnv keeps the first position of a key", () => {
    expect(overlayEnv(["A=1", "B=2"], ["A=3", "D=4", "B"])).toEqual(["A=3", "D=4"]);
  });
});
