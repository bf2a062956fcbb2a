// The README's first command, scripts/setup.sh and .ci/run must not drift apart: CI runs the same setup a user does,
// and every Debian package a test names in its "apt-get install" hint is one that setup installs.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const read = (p: string) => readFileSync(join(root, p), "utf8");

function setupPackages(withTest: boolean): Set<string> {
  const text = read("scripts/setup.sh");
  const list = (name: string) => (new RegExp(`^${name}=\\(([^)]*)\\)`, "m").exec(text)?.[1] ?? "").split(/\s+/).filter(Boolean);
  return new Set([...list("PKGS"), ...(withTest ? list("TEST_PKGS") : [])]);
}

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? testFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("setup script", () => {
  it("is the README's first command, and the second runs the tests", () => {
    const block = /```sh\n([\s\S]*?)```/.exec(read("README.md"))?.[1] ?? "";
    const commands = block
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter(Boolean);
    expect(commands).toEqual(["scripts/setup.sh", "npm test"]);
  });

  it("is what .ci/run uses, with the test packages", () => {
    expect(read(".ci/run")).toMatch(/^scripts\/setup\.sh --test\b/m);
  });

  it("installs every package a test's missing-tool message names", () => {
    const pkgs = setupPackages(true);
    const named = new Set<string>();
    for (const f of testFiles(join(root, "test")))
      for (const m of readFileSync(f, "utf8").matchAll(/apt-get install -y ((?:[a-z0-9][a-z0-9.+-]*\s?)+)/g))
        for (const p of (m[1] as string).split(/\s+/).filter(Boolean)) named.add(p);
    // Named in hints as alternatives already present on every Debian system or pulled in by skopeo.
    for (const p of ["libc-bin", "golang-github-containers-common"]) named.delete(p);
    expect([...named].filter((p) => !pkgs.has(p))).toEqual([]);
  });

  it("no fixture file is git-ignored (it would be missing from a fresh clone, where CI runs)", () => {
    const ignored = execFileSync("git", ["ls-files", "--others", "--ignored", "--exclude-standard", "fixtures"], { cwd: root, encoding: "utf8" });
    expect(ignored.split("\n").filter(Boolean)).toEqual([]);
  });

  it("installs what a build needs without --test", () => {
    const pkgs = setupPackages(false);
    for (const p of ["crun", "slirp4netns", "busybox-static", "umoci", "skopeo"]) expect(pkgs.has(p)).toBe(true);
  });
});
