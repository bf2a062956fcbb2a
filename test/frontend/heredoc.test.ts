// Heredoc markers follow BuildKit's shell-word rules (parser.go heredocsFromLine / ParseHeredoc and shell/lex.go);
// the cases are BuildKit's own (parser_heredoc_test.go), with bodies as tsbuild keeps them (<<- tabs already stripped).
import { describe, expect, it } from "vitest";
import { heredocMarkers, parseHeredocWord } from "../../src/frontend/heredoc.js";
import { parseDockerfile, parseSyntax } from "../../src/frontend/parse.js";
import { decodeInstruction } from "../../src/frontend/instructions.js";
import { runArgv } from "../../src/solver/run-instruction.js";
import { TsbuildError } from "../../src/errors.js";

describe("parseHeredocWord (BuildKit's TestParseHeredocHelpers)", () => {
  it.each(["<<EOF", "<<'EOF'", `<<"EOF"`, "<<-EOF", "<<-'EOF'", `<<-"EOF"`, `<<EO"F"`, "<< EOF", "<<- EOF"])("%s is the heredoc EOF", (w) => {
    expect(parseHeredocWord(w)?.name).toBe("EOF");
  });
  it.each(["<<'EOF", `<<"EOF`, "<<EOF'", `<<EOF"`])("%s is a malformed heredoc", (w) => {
    expect(() => parseHeredocWord(w)).toThrow(TsbuildError);
  });
  it.each(["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh", `<<""`, "x<<EOF", "<<EOF<x"])("%j is not a heredoc", (w) => {
    expect(parseHeredocWord(w)).toBeUndefined();
  });
  it.each([
    ["<<eof", { name: "eof", expand: true, chomp: false }],
    ["<<eo'f'", { name: "eof", expand: false, chomp: false }],
    ["<<eo\\'f", { name: "eo'f", expand: true, chomp: false }],
    ["<<'e'o\\'f", { name: "eo'f", expand: false, chomp: false }],
    ["<<'one two'", { name: "one two", expand: false, chomp: false }],
    ["<<$EOF", { name: "$EOF", expand: true, chomp: false }],
    ["<<${EOF:-x}", { name: "${EOF:-x}", expand: true, chomp: false }],
    ["<<\\EOF", { name: "EOF", expand: true, chomp: false }],
    ['3<<-"EOF"', { name: "EOF", expand: false, chomp: true, fd: 3 }],
    ["<<EOF;", { name: "EOF;", expand: true, chomp: false }],
  ])("%s → %j (quoting any part turns expansion off)", (w, marker) => {
    expect(parseHeredocWord(w)).toEqual(marker);
  });
});

describe("heredocMarkers (BuildKit's TestHeredocsFromLine)", () => {
  it.each([
    ["RUN <<EOF", ["EOF"]],
    ["RUN <<-EOF", ["EOF"]],
    // The lexer folds blanks into `<<` only, so `<<-` and `EOF` stay two words and neither is a heredoc (BuildKit's
    // own table lists EOF here, but its loop over the found heredocs passes vacuously on none).
    ["RUN <<- EOF", []],
    ["RUN << -EOF", ["-EOF"]],
    ["RUN <<'EOF'", ["EOF"]],
    ["RUN 4<<EOF", ["EOF"]],
    ["RUN <<EOF <<EOF2", ["EOF", "EOF2"]],
    ["RUN <<  EOF  > foo", ["EOF"]],
    ["RUN '<<EOF'", []],
    [`RUN "<<EOF"`, []],
    ["RUN cat<<EOF", []],
    ["RUN cat <<<EOF", []],
    ["RUN \\<<EOF", []],
    // An unclosed quote anywhere: the line does not lex, so it has no heredocs.
    ["RUN <<EOF echo 'x", []],
  ])("%s → %j", (line, names) => {
    expect(heredocMarkers(line).map((m) => m.name)).toEqual(names);
  });
});

describe("heredocs in a Dockerfile (BuildKit's TestParseExtractsHeredoc)", () => {
  const dockerfile = [
    "FROM alpine:3.6",
    "ENV NAME=me",
    "RUN ls",
    "USER <<INVALID",
    "INVALID",
    "RUN <<EMPTY",
    "EMPTY",
    "RUN 3<<EMPTY2",
    "EMPTY2",
    'RUN "<<NOHEREDOC"',
    "RUN <<INDENT",
    "\tfoo",
    "\tbar",
    "INDENT",
    "RUN <<-UNINDENT",
    "\tbaz",
    "\tquux",
    "UNINDENT",
    "RUN <<-UNINDENT2",
    "\tbaz",
    "\tquux",
    "\tUNINDENT2",
    "RUN <<-'NOEXPAND'",
    "\tdon't expand $NAME",
    "NOEXPAND",
    "RUN <<COMMENT",
    "# internal comment",
    "echo foo bar # trailing comment",
    "COMMENT",
    "RUN --mount=type=cache,target=/foo <<MOUNT",
    "echo hello",
    "MOUNT",
    "COPY <<FILE1 <<FILE2 /dest",
    "content 1",
    "FILE1",
    "content 2",
    "FILE2",
    "COPY <<X <<Y /dest",
    "Y",
    "X",
    "X",
    "Y",
    "RUN <<COMPLEX python3",
    "print('hello world')",
    "COMPLEX",
    "COPY <<file.txt /dest",
    "hello world",
    "file.txt",
    "RUN <<eo'f'",
    "echo foo",
    "eof",
    "RUN <<eo\\'f",
    "echo foo",
    "eo'f",
    "RUN <<'one two'",
    "echo bar",
    "one two",
    "RUN <<$EOF",
    "$EOF",
    "RUN <<  EOF",
    "EOF",
    'RUN ["<<EOF"]',
    "ONBUILD RUN <<ON",
    "on build",
    "ON",
    "",
  ].join("\n");
  const h = (name: string, content: string, extra: Record<string, unknown> = {}) => ({ name, content, expand: true, chomp: false, ...extra });
  const expected = [
    [], // FROM
    [], // ENV
    [], // RUN ls
    [], // USER <<INVALID: only RUN, COPY and ADD have heredocs
    [], // INVALID (an unknown instruction, fine for the parser)
    [h("EMPTY", "")],
    [h("EMPTY2", "", { fd: 3 })],
    [], // RUN "<<NOHEREDOC"
    [h("INDENT", "\tfoo\n\tbar\n")],
    [h("UNINDENT", "baz\nquux\n", { chomp: true })],
    [h("UNINDENT2", "baz\nquux\n", { chomp: true })],
    [h("NOEXPAND", "don't expand $NAME\n", { chomp: true, expand: false })],
    [h("COMMENT", "# internal comment\necho foo bar # trailing comment\n")],
    [h("MOUNT", "echo hello\n")],
    [h("FILE1", "content 1\n"), h("FILE2", "content 2\n")],
    [h("X", "Y\n"), h("Y", "X\n")],
    [h("COMPLEX", "print('hello world')\n")],
    [h("file.txt", "hello world\n")],
    [h("eof", "echo foo\n", { expand: false })],
    [h("eo'f", "echo foo\n")],
    [h("one two", "echo bar\n", { expand: false })],
    [h("$EOF", "")],
    [h("EOF", "")],
    [], // exec form has no heredocs (TestParseJSONHeredoc)
    [h("ON", "on build\n")],
  ];

  it("finds each instruction's heredocs", () => {
    const tree = parseSyntax(dockerfile);
    expect(tree.instructions.map((i) => i.heredocs)).toEqual(expected);
    expect(tree.instructions.at(-1)?.trigger?.heredocs).toEqual([h("ON", "on build\n")]);
  });

  it("COPY sources that are heredoc markers are not paths; the rest are", () => {
    const copy = parseDockerfile('FROM a\nCOPY <<E"O"F x <<-B /dest/\nbody\nEOF\n\tb\nB\n').instructions[1];
    const t = copy && decodeInstruction(copy);
    expect(t?.kind === "COPY" && { sources: t.sources, dest: t.dest, names: t.heredocs.map((x) => [x.name, x.expand]) }).toEqual({
      sources: ["x"],
      dest: "/dest/",
      names: [
        ["EOF", false],
        ["B", true],
      ],
    });
  });

  it("COPY << EOF has the heredoc, but its arguments split on blanks, so `<<` and `EOF` are source paths as in BuildKit", () => {
    const copy = parseDockerfile("FROM a\nCOPY << EOF /dest\nx\nEOF\n").instructions[1];
    const t = copy && decodeInstruction(copy);
    expect(t?.kind === "COPY" && [t.sources, t.heredocs.map((x) => x.name)]).toEqual([["<<", "EOF"], ["EOF"]]);
  });

  it.each(["COPY /foo <<EOF\nEOF\n", "ADD a <<-'X'\nX\n"])("%j: a heredoc cannot be the destination (BuildKit's TestErrorCasesHeredoc)", (text) => {
    expect(() => parseDockerfile(`FROM a\n${text}`)).toThrow(/cannot accept a heredoc as a destination/);
    expect(() => parseSyntax(`FROM a\n${text}`)).not.toThrow();
  });

  it("COPY <<EOF alone has no destination (BuildKit counts the marker as an argument)", () => {
    expect(() => parseDockerfile("FROM a\nCOPY <<EOF\nx\nEOF\n")).toThrow(/requires at least two arguments/);
  });

  it("a lone marker of any shape is the RUN script; anything more goes to the shell", () => {
    const state = { config: { config: { Shell: ["/bin/sh", "-c"] } } } as unknown as Parameters<typeof runArgv>[0];
    const run = (text: string) => {
      const i = parseDockerfile(`FROM a\n${text}`).instructions[1];
      return i && runArgv(state, { json: i.json, args: i.args, heredocs: i.heredocs } as Parameters<typeof runArgv>[1]);
    };
    expect(run('RUN <<E"O"F\necho $x\nEOF\n')?.argv).toEqual(["/bin/sh", "-c", "echo $x\n"]);
    expect(run("RUN << EOF\necho hi\nEOF\n")?.argv).toEqual(["/bin/sh", "-c", "echo hi\n"]);
    expect(run("RUN <<EOF bash\necho hi\nEOF\n")?.argv).toEqual(["/bin/sh", "-c", "<<EOF bash\necho hi\nEOF"]);
  });
});
