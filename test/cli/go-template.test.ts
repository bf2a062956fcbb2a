// The Go-template subset behind --format (images, history, inspect): a table of templates, data and output.
import { describe, expect, it } from "vitest";
import { TsbuildError } from "../../src/errors.js";
import { goJson, parseGoTemplate, parseListFormat, renderList, tabulate } from "../../src/cli/go-template.js";

const image = {
  Id: "sha256:abc",
  RepoTags: ["app:1", "app:latest"],
  Created: "2024-01-02T03:04:05Z",
  Size: 1234,
  Config: {
    Env: ["PATH=/bin", "A=1"],
    Cmd: ["sh"],
    Labels: new Map([
      ["version", "2"],
      ["a.b", "<x>"],
    ]),
    User: "",
  },
};

describe("execute", () => {
  it.each([
    ["{{.Id}}", "sha256:abc"],
    ["id={{ .Id }}!", "id=sha256:abc!"],
    ["{{.Config.Env}}", "[PATH=/bin A=1]"],
    ["{{.Config.Labels}}", "map[a.b:<x> version:2]"],
    ["{{.Config.Labels.version}}", "2"],
    ["{{.Config.Labels.missing}}", "<no value>"],
    ['{{index .Config.Labels "a.b"}}', "<x>"],
    ['{{index .Config.Labels "nope"}}', ""],
    ["{{index .RepoTags 1}}", "app:latest"],
    ["{{json .Config.Labels}}", '{"a.b":"\\u003cx\\u003e","version":"2"}'],
    ["{{json .RepoTags}}", '["app:1","app:latest"]'],
    ["{{.Config.Cmd | json}}", '["sh"]'],
    ['{{join .RepoTags ", "}}', "app:1, app:latest"],
    ['{{upper .Id}} {{lower `ABC`}} {{title "hello world"}}', "SHA256:ABC abc Hello World"],
    ["{{len .RepoTags}}", "2"],
    ["{{.Size}}", "1234"],
    ["{{range .RepoTags}}<{{.}}>{{end}}", "<app:1><app:latest>"],
    ["{{range .Config.Labels}}{{.}};{{end}}", "<x>;2;"],
    ["{{if .Config.User}}user{{else}}root{{end}}", "root"],
    ['{{if eq .Id "sha256:abc"}}yes{{end}}', "yes"],
    ["a  {{- .Size -}}  b", "a1234b"],
    ["{{/* a comment */}}x", "x"],
    ["{{println .Size}}", "1234\n"],
    ["{{truncate .Id 6}}", "sha256"],
  ])("%s", (tpl, want) => {
    expect(parseGoTemplate(tpl).execute(image)).toBe(want);
  });

  it("json of the whole object keeps field order and sorts map keys", () => {
    expect(parseGoTemplate("{{json .Config}}").execute(image)).toBe(
      '{"Env":["PATH=/bin","A=1"],"Cmd":["sh"],"Labels":{"a.b":"\\u003cx\\u003e","version":"2"},"User":""}',
    );
    expect(goJson({ a: undefined, b: null })).toBe('{"a":null,"b":null}');
  });
});

describe("errors", () => {
  const err = (tpl: string): TsbuildError => {
    try {
      parseGoTemplate(tpl).execute(image);
    } catch (e) {
      if (e instanceof TsbuildError) return e;
      throw e;
    }
    throw new Error(`no error for ${tpl}`);
  };
  it("names an unknown field, the valid ones and the nearest", () => {
    const e = err("{{.RepoTag}}");
    expect(e.code).toBe("BAD_TEMPLATE");
    expect(e.message).toContain("unknown field .RepoTag in {{.RepoTag}}");
    expect(e.message).toContain(".Id, .RepoTags, .Created, .Size, .Config");
    expect(e.hint).toBe("did you mean .RepoTags?");
    const nested = err("{{.Config.env}}");
    expect(nested.message).toContain("(in .Config)");
    expect(nested.hint).toBe("did you mean .Config.Env?");
  });
  it.each([
    ["{{.Id", "without its }}"],
    ["{{if .Id}}x", "has no {{end}}"],
    ["{{end}}", "without a matching"],
    ["{{jsn .}}", "unknown function"],
    ["{{$x := .Id}}", "variables"],
    ["{{.Id.Foo}}", "cannot take .Foo of a string"],
    ["{{index .RepoTags 5}}", "out of range"],
    ["{{with .Id}}{{end}}", "not supported"],
    ["{{}}", "empty action"],
  ])("%s", (tpl, text) => {
    const e = err(tpl);
    expect(e.code).toBe("BAD_TEMPLATE");
    expect(e.message).toContain(text);
  });
});

describe("docker's format layer", () => {
  const rows = [
    { Repository: "busybox", Tag: "local", ID: "0123456789ab" },
    { Repository: "a-much-longer-name", Tag: "1", ID: "ba9876543210" },
  ];
  const header = { Repository: "REPOSITORY", Tag: "TAG", ID: "IMAGE ID" };
  it("table/json/template", () => {
    expect(parseListFormat(undefined)).toEqual({ kind: "default" });
    expect(parseListFormat("table")).toEqual({ kind: "default" });
    expect(parseListFormat("json")).toEqual({ kind: "json" });
    const f = parseListFormat("{{.Repository}}:{{.Tag}}");
    if (f.kind !== "template") throw new Error("not a template");
    expect(f.table).toBe(false);
    expect(renderList(f.template, f.table, rows, header)).toBe("busybox:local\na-much-longer-name:1\n");
  });
  it("escapes and a table header", () => {
    const f = parseListFormat("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}");
    if (f.kind !== "template") throw new Error("not a template");
    expect(renderList(f.template, f.table, rows, header)).toBe(
      ["REPOSITORY           TAG       IMAGE ID", "busybox              local     0123456789ab", "a-much-longer-name   1         ba9876543210", ""].join("\n"),
    );
    const plain = parseListFormat("{{.Repository}}\\t{{.Tag}}");
    if (plain.kind !== "template") throw new Error("not a template");
    expect(renderList(plain.template, plain.table, rows, header)).toBe("busybox\tlocal\na-much-longer-name\t1\n");
  });
  it("tabulate pads to width + 3, at least 10, and leaves the last cell alone", () => {
    expect(tabulate("a\tbb\tc\nccc\td\te\n")).toBe("a         bb        c\nccc       d         e\n");
  });
});
