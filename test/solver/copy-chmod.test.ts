import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseChmod } from "../../src/solver/chmod.js";
import { tempDir } from "./copy-helpers.js";

let dir: string;
beforeAll(async () => {
  dir = await tempDir("chmod-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What GNU chmod(1) makes of `spec` on a file or directory starting at `start`. */
function realChmod(spec: string, start: number, isDir: boolean): number {
  const p = path.join(dir, isDir ? "d" : "f");
  rmSync(p, { recursive: true, force: true });
  if (isDir) mkdirSync(p);
  else writeFileSync(p, "");
  chmodSync(p, start);
  execFileSync("chmod", [spec, p]);
  return statSync(p).mode & 0o7777;
}

describe("parseChmod", () => {
  it("parses octal modes, including special bits", () => {
    expect(parseChmod("755")(0o600, false)).toBe(0o755);
    expect(parseChmod("0644")(0o777, true)).toBe(0o644);
    expect(parseChmod("4755")(0o644, false)).toBe(0o4755);
    expect(parseChmod("1777")(0o755, true)).toBe(0o1777);
  });

  const specs = ["u+x", "g-w", "o=r", "a+rX", "+x", "u=rwx,go=rX", "go-rwx", "u+s", "g+s,o+t", "a=", "u=g", "o=u", "ug+w,o-r", "a-x,u+X", "=r"];
  const starts = [0o644, 0o755, 0o600, 0o2775, 0o4711, 0o1777];
  for (const spec of specs) {
    it(`matches chmod(1) for ${spec}`, () => {
      const fn = parseChmod(spec);
      for (const start of starts) {
        for (const isDir of [false, true]) {
          // chmod(1) with no "who" honours the umask; a build has none, so compare with a zero umask.
          const old = process.umask(0);
          try {
            expect([spec, start.toString(8), isDir, fn(start, isDir).toString(8)]).toEqual([
              spec,
              start.toString(8),
              isDir,
              realChmod(spec, start, isDir).toString(8),
            ]);
          } finally {
            process.umask(old);
          }
        }
      }
    });
  }

  it("rejects bad values with BAD_CHMOD", () => {
    for (const bad of ["", "888", "12345", "u+q", "x+r", "rwx", "u+x,", "9"]) {
      expect(() => parseChmod(bad), bad).toThrow(expect.objectContaining({ code: "BAD_CHMOD" }));
    }
  });
});
