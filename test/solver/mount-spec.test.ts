import { describe, expect, test } from "vitest";
import { DockerfileParseError, UsageError } from "../../src/errors.js";
import { parseMountSpec, parseSecretFlag, type MountSpec } from "../../src/solver/mount-spec.js";

const base = { readonly: false, sharing: "shared", required: false } as const;

const VALID: [string, Partial<MountSpec>][] = [
  ["target=/src", { type: "bind", target: "/src", readonly: true }],
  ["type=bind,source=app,target=/app", { type: "bind", source: "app", target: "/app", readonly: true }],
  ["type=bind,src=.,dst=/app,rw", { type: "bind", source: ".", target: "/app", readonly: false }],
  ["type=bind,from=build,source=/out,destination=/out/,readwrite=true", { type: "bind", from: "build", source: "/out", target: "/out", readonly: false }],
  ["type=bind,target=/x,rw,ro", { type: "bind", target: "/x", readonly: true }],
  ["type=bind,target=/x,readonly=false", { type: "bind", target: "/x", readonly: false }],
  ["type=cache,target=/root/.cache", { ...base, type: "cache", target: "/root/.cache" }],
  [
    "type=cache,target=/root/.cache,id=x,sharing=locked,uid=1000,gid=1000,mode=0755",
    { ...base, type: "cache", target: "/root/.cache", id: "x", sharing: "locked", uid: 1000, gid: 1000, mode: 0o755 },
  ],
  ["type=cache,target=c,sharing=private,ro", { type: "cache", target: "c", sharing: "private", readonly: true }],
  ["TYPE=cache,Target=/c,mode=700", { type: "cache", target: "/c", mode: 0o700 }],
  ["type=tmpfs,target=/tmp/t,size=64m", { type: "tmpfs", target: "/tmp/t", size: 64 * 1024 * 1024 }],
  ["type=tmpfs,target=/t,size=1000", { type: "tmpfs", target: "/t", size: 1000 }],
  ["type=secret,id=tok", { type: "secret", id: "tok", target: "/run/secrets/tok", required: false }],
  ["type=secret,target=/etc/aws/creds", { type: "secret", id: "creds", target: "/etc/aws/creds" }],
  ["type=secret,id=tok,required", { type: "secret", id: "tok", required: true }],
  ["type=secret,id=tok,required=false,mode=0444,uid=5", { type: "secret", required: false, mode: 0o444, uid: 5 }],
  ["type=secret,id=tok,env=TOKEN", { type: "secret", id: "tok", env: "TOKEN", target: "" }],
  ["type=secret,id=tok,env=TOKEN,target=/t", { type: "secret", id: "tok", env: "TOKEN", target: "/t" }],
];

const INVALID: [string, RegExp][] = [
  ["type=cache", /target= is required/],
  ["source=x", /target= is required/],
  ["type=bind,target=/x,bogus=1", /unknown option "bogus"/],
  ["type=bind,target=/x,nope", /unknown option "nope"/],
  ["type=volume,target=/x", /unknown mount type "volume"/],
  ["type=cache,target=/x,sharing=sometimes", /sharing=sometimes/],
  ["type=cache,target=/x,uid=root", /uid=root: expected a numeric id/],
  ["type=cache,target=/x,mode=0999", /mode=0999/],
  ["type=cache,target=/x,mode=", /mode needs a value/],
  ["type=bind,target=/x,ro=maybe", /ro=maybe/],
  ["type=tmpfs,target=/x,size=lots", /size=lots/],
  ["type=secret", /needs id= or target=/],
  ["type=secret,id=x,env=1BAD", /env=1BAD/],
  ["type=bind,target=/", /cannot mount over \//],
];

describe("parseMountSpec", () => {
  test.each(VALID)("%s", (raw, want) => {
    expect(parseMountSpec(raw)).toMatchObject(want);
  });

  test.each(INVALID)("%s is rejected", (raw, message) => {
    const range = { file: "Dockerfile", start: { line: 3, column: 1 }, end: { line: 3, column: 9 } };
    let err: unknown;
    try {
      parseMountSpec(raw, range);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DockerfileParseError);
    expect((err as DockerfileParseError).code).toBe("BAD_MOUNT");
    expect((err as DockerfileParseError).range).toEqual(range);
    expect((err as Error).message).toMatch(message);
  });

  test("type=ssh: id defaults to default, target to BuildKit's per-RUN socket path, no source", () => {
    expect(parseMountSpec("type=ssh")).toMatchObject({ type: "ssh", id: "default", target: "", required: false });
    expect(parseMountSpec("type=ssh,id=gh,target=/s/agent,required=true,mode=0644,uid=1")).toMatchObject({
      id: "gh",
      target: "/s/agent",
      required: true,
      mode: 0o644,
      uid: 1,
    });
    expect(() => parseMountSpec("type=ssh,source=/x")).toThrow(/takes no source/);
  });
});

describe("parseSecretFlag", () => {
  const env = { MY_TOKEN: "t", tok: "v" };
  test.each([
    ["id=a,src=/run/a.txt", ["a", { src: "/run/a.txt" }]],
    ["id=a,source=/run/a.txt,type=file", ["a", { src: "/run/a.txt" }]],
    ["id=a,env=MY_TOKEN", ["a", { env: "MY_TOKEN" }]],
    ["id=a,type=env,src=MY_TOKEN", ["a", { env: "MY_TOKEN" }]],
    ["id=MY_TOKEN,type=env", ["MY_TOKEN", { env: "MY_TOKEN" }]],
    ["id=tok", ["tok", { env: "tok" }]],
  ] as const)("%s", (value, want) => {
    const [id, { environment, ...source }] = parseSecretFlag(value, env);
    expect([id, source]).toEqual(want);
    // env secrets are read from the environment the flag was parsed with (the CLI's), not process.env.
    if (source.env !== undefined) expect(environment).toBe(env);
  });

  test("relative src is made absolute", () => {
    expect(parseSecretFlag("id=a,src=secret.txt", env)[1].src).toBe(`${process.cwd()}/secret.txt`);
  });

  test.each([
    ["src=/x", /id= is required/],
    ["id=a,src=/x,env=Y", /not both/],
    ["id=a,type=socket", /type must be file or env/],
    ["id=a,colour=blue", /unknown option "colour"/],
    ["id", /expected key=value/],
    ["id=unset_var", /\$unset_var is not set/],
  ])("%s is a usage error", (value, message) => {
    expect(() => parseSecretFlag(value, env)).toThrow(UsageError);
    expect(() => parseSecretFlag(value, env)).toThrow(message);
  });
});
