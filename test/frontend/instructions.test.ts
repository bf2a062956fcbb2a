// decodeInstruction, table-driven: typed fields per keyword, flag validation with positions, Go durations.
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "../../src/frontend/parse.js";
import { decodeInstruction, parseGoDuration, type TypedInstruction } from "../../src/frontend/instructions.js";
import { TsbuildError } from "../../src/errors.js";

/** Decode the last instruction of `FROM a` + body, dropping `src` for comparison. */
function typed(body: string): Record<string, unknown> {
  const parsed = parseDockerfile(`FROM a\n${body}`);
  const last = parsed.instructions[parsed.instructions.length - 1]!;
  const { src, ...rest } = decodeInstruction(last) as TypedInstruction & Record<string, unknown>;
  expect(src).toBe(last);
  return rest;
}

function failure(body: string): [string, number | undefined, number | undefined] {
  try {
    parseDockerfile(`FROM a\n${body}`);
  } catch (e) {
    if (!(e instanceof TsbuildError)) throw e;
    return [e.code, e.range?.start.line, e.range?.start.column];
  }
  throw new Error(`expected an error for ${body}`);
}

describe("decodeInstruction", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["FROM --platform=linux/arm64 img AS Name", { kind: "FROM", image: "img", name: "name", platform: "linux/arm64" }],
    ["RUN echo hi", { kind: "RUN", json: false, command: [], script: "echo hi", heredocs: [], mounts: [] }],
    ['RUN ["echo", "hi"]', { kind: "RUN", json: true, command: ["echo", "hi"], script: "", heredocs: [], mounts: [] }],
    [
      "RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none --security=sandbox make",
      {
        kind: "RUN",
        json: false,
        command: [],
        script: "make",
        heredocs: [],
        mounts: ["type=cache,target=/c", "type=tmpfs,target=/t"],
        network: "none",
        security: "sandbox",
      },
    ],
    [
      "COPY --from=build --chown=app --chmod=u+x,g-w --link --parents --exclude=*.md --exclude=x a b /d/",
      {
        kind: "COPY",
        sources: ["a", "b"],
        dest: "/d/",
        json: false,
        heredocs: [],
        from: "build",
        chown: "app",
        chmod: "u+x,g-w",
        link: true,
        parents: true,
        exclude: ["*.md", "x"],
        keepGitDir: false,
      },
    ],
    [
      "COPY --link=false --chmod=0644 a b",
      { kind: "COPY", sources: ["a"], dest: "b", json: false, heredocs: [], chmod: "0644", link: false, parents: false, exclude: [], keepGitDir: false },
    ],
    [
      "ADD --checksum=sha256:0 --keep-git-dir --unpack=false u /d",
      {
        kind: "ADD",
        sources: ["u"],
        dest: "/d",
        json: false,
        heredocs: [],
        checksum: "sha256:0",
        link: false,
        parents: false,
        exclude: [],
        keepGitDir: true,
        unpack: false,
      },
    ],
    [
      'COPY ["a b", "/c d/"]',
      { kind: "COPY", sources: ["a b"], dest: "/c d/", json: true, heredocs: [], link: false, parents: false, exclude: [], keepGitDir: false },
    ],
    [
      'ENV A=1 B="2 3"',
      {
        kind: "ENV",
        pairs: [
          { key: "A", value: "1" },
          { key: "B", value: '"2 3"' },
        ],
      },
    ],
    ["ENV A b c", { kind: "ENV", pairs: [{ key: "A", value: "b c" }] }],
    ["LABEL a=b", { kind: "LABEL", pairs: [{ key: "a", value: "b" }] }],
    ["ARG A B=2", { kind: "ARG", args: [{ name: "A" }, { name: "B", default: "2" }] }],
    ['CMD ["a"]', { kind: "CMD", json: true, args: ["a"] }],
    ["ENTRYPOINT run it", { kind: "ENTRYPOINT", json: false, args: ["run it"] }],
    ['SHELL ["pwsh", "-c"]', { kind: "SHELL", args: ["pwsh", "-c"] }],
    ["WORKDIR /a b", { kind: "WORKDIR", path: "/a b" }],
    ["USER 1000:1000", { kind: "USER", user: "1000:1000" }],
    ["EXPOSE 80 53/udp", { kind: "EXPOSE", ports: ["80", "53/udp"] }],
    ['VOLUME ["/v"]', { kind: "VOLUME", paths: ["/v"] }],
    ["STOPSIGNAL SIGKILL", { kind: "STOPSIGNAL", signal: "SIGKILL" }],
    ["MAINTAINER me <m@e>", { kind: "MAINTAINER", name: "me <m@e>" }],
    ["HEALTHCHECK NONE", { kind: "HEALTHCHECK", none: true }],
    [
      "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1.5s --retries=4 CMD curl -f x",
      {
        kind: "HEALTHCHECK",
        none: false,
        json: false,
        test: ["curl -f x"],
        interval: 90e9,
        timeout: 500e6,
        startPeriod: 2e9,
        startInterval: 1.5e9,
        retries: 4,
      },
    ],
    ['HEALTHCHECK CMD ["true"]', { kind: "HEALTHCHECK", none: false, json: true, test: ["CMD", "true"] }],
  ];
  for (const [body, want] of cases) it(body, () => expect(typed(body)).toEqual(want));

  it("ONBUILD keeps the trigger and its text", () => {
    const t = typed("ONBUILD COPY --chown=1 a b");
    expect(t.kind).toBe("ONBUILD");
    expect(t.expression).toBe("COPY --chown=1 a b");
    expect((t.trigger as { keyword: string; flags: string[] }).keyword).toBe("COPY");
  });

  it("COPY heredoc operators are not sources", () => {
    const t = typed("COPY <<A <<B /d/\na\nA\nb\nB");
    expect(t.sources).toEqual([]);
    expect((t.heredocs as { name: string }[]).map((h) => h.name)).toEqual(["A", "B"]);
  });
});

describe("flag and argument errors point at their column", () => {
  const cases: [string, [string, number, number]][] = [
    ["COPY --frm=x a b", ["UNKNOWN_FLAG", 2, 6]],
    ["RUN --mount=type=cache \\\n  --oops echo", ["UNKNOWN_FLAG", 3, 3]],
    ["WORKDIR --x=1 /a", ["UNKNOWN_FLAG", 2, 9]],
    ["COPY --chmod=8 a b", ["BAD_CHMOD", 2, 6]],
    ["COPY --chmod=u+q a b", ["BAD_CHMOD", 2, 6]],
    ["COPY --link=yes a b", ["BAD_FLAG_VALUE", 2, 6]],
    ["COPY --from a b", ["BAD_FLAG_VALUE", 2, 6]],
    ["COPY --from=a --from=b a b", ["DUPLICATE_FLAG", 2, 15]],
    ["RUN --network=bridge x", ["BAD_FLAG_VALUE", 2, 5]],
    ["HEALTHCHECK --timeout=5 CMD x", ["BAD_DURATION", 2, 13]],
    ["HEALTHCHECK --timeout=1us CMD x", ["BAD_DURATION", 2, 13]],
    ["HEALTHCHECK --retries=x CMD x", ["BAD_FLAG_VALUE", 2, 13]],
    ["HEALTHCHECK FOO x", ["BAD_HEALTHCHECK", 2, 13]],
    ["ARG =1", ["BAD_ARG", 2, 5]],
    ["ENV a=1 b", ["BAD_KEY_VALUE", 2, 9]],
    ["USER", ["ARITY", 2, 5]],
    ["STOPSIGNAL 1 2", ["ARITY", 2, 14]],
  ];
  for (const [body, want] of cases) it(body.replace(/\n/g, "\\n"), () => expect(failure(body)).toEqual(want));
});

describe("parseGoDuration", () => {
  const cases: [string, number | undefined][] = [
    ["0", 0],
    ["30s", 30e9],
    ["1m30s", 90e9],
    ["1.5h", 5400e9],
    ["2h45m", 9900e9],
    ["300ms", 300e6],
    ["10us", 10e3],
    ["10µs", 10e3],
    ["7ns", 7],
    [".5s", 0.5e9],
    ["-1s", -1e9],
    ["+2s", 2e9],
    ["10", undefined],
    ["", undefined],
    ["s", undefined],
    ["1d", undefined],
    ["1s2", undefined],
    ["3000000h", undefined],
  ];
  for (const [text, ns] of cases) it(JSON.stringify(text), () => expect(parseGoDuration(text)).toBe(ns));
});
