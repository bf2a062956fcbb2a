// binfmt_misc handlers: which platform an ELF magic names, how a /proc entry parses, and what the machine can run
// (native, emulated with the F flag, unusable) — read from a fake binfmt_misc directory, and from the real one.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildablePlatforms, canRun, parseBinfmtEntry, platformOfMagic, requireRunnable } from "../../src/executor/binfmt.js";
import { ensureBinfmt } from "../helpers/platforms.js";

// Debian's qemu-aarch64 and qemu-arm registrations (magic as /proc prints it, without the \x escapes).
const AARCH64 = "7f454c460201010000000000000000000200b700";
const ARM = "7f454c4601010100000000000000000002002800";
const S390X = "7f454c46020201000000000000000000000200" + "16"; // big-endian e_machine 0x0016
const entry = (magic: string, flags: string, enabled = true) =>
  `${enabled ? "enabled" : "disabled"}\ninterpreter /usr/libexec/qemu-binfmt/x-binfmt-P\nflags: ${flags}\noffset 0\nmagic ${magic}\nmask ffffffffffffff00fffffffffffffffffeffffff\n`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsbuild-binfmt-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fakeBinfmt(entries: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(dir, "b-"));
  await writeFile(join(d, "register"), "");
  await writeFile(join(d, "status"), "enabled\n");
  for (const [n, t] of Object.entries(entries)) await writeFile(join(d, n), t);
  return d;
}

describe("ELF magic and entries", () => {
  it("maps e_machine to Go architectures", () => {
    expect(platformOfMagic(AARCH64, 0)).toEqual({ os: "linux", architecture: "arm64" });
    expect(platformOfMagic(ARM, 0)).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(platformOfMagic("4d5a", 0)).toBeUndefined(); // not ELF (a Windows PE handler)
    expect(platformOfMagic(AARCH64, 4)).toBeUndefined();
  });
  it("parses enabled, interpreter and flags", () => {
    expect(parseBinfmtEntry("qemu-aarch64", entry(AARCH64, "POF"))).toMatchObject({
      name: "qemu-aarch64",
      enabled: true,
      flags: "POF",
      interpreter: "/usr/libexec/qemu-binfmt/x-binfmt-P",
      platform: { architecture: "arm64" },
    });
  });
});

describe("what the machine can run", () => {
  it("an enabled F handler is an emulated platform; without F or disabled it is unusable and requireRunnable says why", async () => {
    const d = await fakeBinfmt({
      "qemu-aarch64": entry(AARCH64, "POF"),
      "qemu-arm": entry(ARM, "P"),
      "qemu-x": entry(S390X, "F", false),
    });
    const b = await buildablePlatforms(d);
    expect(b.emulated.map((e) => e.platform.architecture)).toEqual(["arm64"]);
    expect(b.unusable.map((u) => [u.handler.name, u.why])).toEqual([
      ["qemu-arm", "registered without the F flag"],
      ["qemu-x", "the handler is disabled"],
    ]);
    expect(canRun(b, { os: "linux", architecture: "aarch64" })).toBe(true);
    expect(canRun(b, { os: "linux", architecture: "386" })).toBe(true); // amd64 runs 386 natively
    await expect(requireRunnable([{ os: "linux", architecture: "arm64" }], d)).resolves.toBeUndefined();
    await expect(requireRunnable([{ os: "linux", architecture: "arm" }], d)).rejects.toMatchObject({
      code: "NO_EMULATOR",
      message: expect.stringContaining("qemu-arm is registered without the F flag"),
      hint: expect.stringContaining("/usr/lib/binfmt.d/qemu-arm.conf"),
    });
  });
  it("binfmt_misc not mounted: nothing is emulated, and the error says to install and register", async () => {
    const d = join(dir, "absent");
    await mkdir(d, { recursive: true });
    expect((await buildablePlatforms(d)).emulated).toEqual([]);
    await expect(requireRunnable([{ os: "linux", architecture: "arm64" }], d)).rejects.toMatchObject({
      code: "NO_EMULATOR",
      hint: expect.stringContaining("apt-get install -y qemu-user-static"),
    });
  });
  it("on this machine (after the test helper registered it) aarch64 is emulated", async () => {
    await ensureBinfmt("aarch64");
    const b = await buildablePlatforms();
    expect(b.emulated.map((e) => e.platform.architecture)).toContain("arm64");
  });
});
