// The flag parser's docker-style corners: bundled boolean short flags and flags ending at the first positional.
import { describe, expect, it } from "vitest";
import { parseArgs, type FlagSpec } from "../../src/cli/args.js";

const specs: FlagSpec[] = [
  { name: "interactive", short: "i", type: "boolean", help: "" },
  { name: "tty", short: "t", type: "boolean", help: "" },
  { name: "env", short: "e", type: "list", value: "KV", help: "" },
];

describe("parseArgs", () => {
  it("reads -it as -i -t; only the last flag of a bundle may take a value (pflag's rule)", () => {
    const p = parseArgs(["-it", "img"], specs, "run");
    expect(p.flags.get("interactive")).toBe(true);
    expect(p.flags.get("tty")).toBe(true);
    const q = parseArgs(["-ie", "A=1", "img"], specs, "run");
    expect([q.flags.get("interactive"), q.flags.get("env"), q.positionals]).toEqual([true, ["A=1"], ["img"]]);
    expect(() => parseArgs(["-ei", "img"], specs, "run")).toThrow(/unknown flag -ei/);
  });
  it("with stopAtPositional, everything from the first positional on is positional", () => {
    const p = parseArgs(["-e", "A=1", "img", "echo", "-e", "--tty", "--", "x"], specs, "run", { stopAtPositional: true });
    expect(p.flags.get("env")).toEqual(["A=1"]);
    expect(p.flags.get("tty")).toBeUndefined();
    expect(p.positionals).toEqual(["img", "echo", "-e", "--tty", "--", "x"]);
    expect(parseArgs(["img", "-t"], specs, "run").flags.get("tty")).toBe(true);
  });
});
