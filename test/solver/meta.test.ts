import { describe, expect, it } from "vitest";
import { applyMeta, expandPorts } from "../../src/solver/meta.js";
import type { ImageConfig } from "../../src/image/types.js";
import { TsbuildError } from "../../src/errors.js";

const base = (): ImageConfig => ({
  architecture: "amd64",
  os: "linux",
  config: { Env: ["PATH=/usr/bin:/bin"], Cmd: ["sh"] },
  rootfs: { type: "layers", diff_ids: [] },
});

describe("metadata instructions change the image config like Docker", () => {
  it("ENV sets and replaces variables in order of first definition", () => {
    let r = applyMeta(
      base(),
      {
        kind: "ENV",
        pairs: [
          { key: "A", value: "1" },
          { key: "PATH", value: "/x" },
        ],
      },
      false,
    );
    expect(r.config.config.Env).toEqual(["PATH=/x", "A=1"]);
    expect(r.createdBy).toBe("ENV A=1 PATH=/x");
    r = applyMeta(r.config, { kind: "ENV", pairs: [{ key: "A", value: "2" }] }, false);
    expect(r.config.config.Env).toEqual(["PATH=/x", "A=2"]);
  });

  it("LABEL merges labels, MAINTAINER sets author", () => {
    const r = applyMeta(base(), { kind: "LABEL", pairs: [{ key: "a", value: "b c" }] }, false);
    expect(r.config.config.Labels).toEqual({ a: "b c" });
    expect(applyMeta(r.config, { kind: "MAINTAINER", name: "Jo <jo@x>" }, false).config.author).toBe("Jo <jo@x>");
  });

  it("EXPOSE normalises protocols and expands ranges", () => {
    const r = applyMeta(base(), { kind: "EXPOSE", ports: ["80", "53/UDP", "8000-8002"] }, false);
    expect(Object.keys(r.config.config.ExposedPorts ?? {})).toEqual(["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]);
    expect(r.createdBy).toBe("EXPOSE map[53/udp:{} 80/tcp:{} 8000/tcp:{} 8001/tcp:{} 8002/tcp:{}]");
    expect(() => expandPorts(["http"])).toThrow(TsbuildError);
    expect(() => expandPorts(["70000"])).toThrow(/invalid port/);
  });

  it("shell-form CMD and ENTRYPOINT go through the current SHELL; exec form is kept", () => {
    let r = applyMeta(base(), { kind: "SHELL", args: ["/bin/bash", "-eu", "-c"] }, false);
    expect(r.config.config.Shell).toEqual(["/bin/bash", "-eu", "-c"]);
    r = applyMeta(r.config, { kind: "CMD", json: false, args: ["echo hi"] }, false);
    expect(r.config.config.Cmd).toEqual(["/bin/bash", "-eu", "-c", "echo hi"]);
    expect(r.createdBy).toBe('CMD ["/bin/bash" "-eu" "-c" "echo hi"]');
    r = applyMeta(base(), { kind: "CMD", json: true, args: ["a", "b"] }, false);
    expect(r.config.config.Cmd).toEqual(["a", "b"]);
    expect(r.cmdSet).toBe(true);
  });

  it("ENTRYPOINT resets an inherited CMD, but not one set in the same stage", () => {
    const inherited = applyMeta(base(), { kind: "ENTRYPOINT", json: true, args: ["/app"] }, false);
    expect(inherited.config.config.Entrypoint).toEqual(["/app"]);
    expect(inherited.config.config.Cmd).toBeNull();
    const own = applyMeta(base(), { kind: "ENTRYPOINT", json: true, args: ["/app"] }, true);
    expect(own.config.config.Cmd).toEqual(["sh"]);
  });

  it("USER, VOLUME, STOPSIGNAL, ONBUILD, HEALTHCHECK", () => {
    let c = applyMeta(base(), { kind: "USER", user: "app:app" }, false).config;
    expect(c.config.User).toBe("app:app");
    const v = applyMeta(c, { kind: "VOLUME", paths: ["/data", "/logs"] }, false);
    expect(v.config.config.Volumes).toEqual({ "/data": {}, "/logs": {} });
    expect(v.createdBy).toBe("VOLUME [/data /logs]");
    expect(() => applyMeta(c, { kind: "VOLUME", paths: [""] }, false)).toThrow(/empty/);
    c = applyMeta(c, { kind: "STOPSIGNAL", signal: "SIGQUIT" }, false).config;
    expect(c.config.StopSignal).toBe("SIGQUIT");
    expect(() => applyMeta(c, { kind: "STOPSIGNAL", signal: "not a signal" }, false)).toThrow(/STOPSIGNAL/);
    c = applyMeta(c, { kind: "ONBUILD", expression: "COPY . /app" }, false).config;
    expect(c.config.OnBuild).toEqual(["COPY . /app"]);
    c = applyMeta(c, { kind: "HEALTHCHECK", health: { Test: ["CMD-SHELL", "true"], Interval: 30e9 }, createdBy: "HEALTHCHECK ..." }, false).config;
    expect(c.config.Healthcheck).toEqual({ Test: ["CMD-SHELL", "true"], Interval: 30e9 });
  });

  it("never mutates its input", () => {
    const b = base();
    const copy = structuredClone(b);
    applyMeta(b, { kind: "ENV", pairs: [{ key: "X", value: "1" }] }, false);
    applyMeta(b, { kind: "ENTRYPOINT", json: true, args: ["x"] }, false);
    expect(b).toEqual(copy);
  });
});
