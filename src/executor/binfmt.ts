// What this machine can run: its own platform natively, and foreign ones through binfmt_misc handlers (Debian's
// qemu-user-static registers /usr/libexec/qemu-binfmt/*). A RUN for a foreign platform needs an enabled handler
// whose ELF magic names that architecture, registered with the F flag (the interpreter is opened at registration,
// so it works inside the RUN's mount namespace, where the host's interpreter path does not exist).
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { EnvironmentError } from "../errors.js";
import { compatiblePlatforms, formatPlatform, hostPlatform, normalizePlatform, samePlatform } from "../image/platform.js";
import type { Platform } from "../image/types.js";

export const BINFMT_DIR = "/proc/sys/fs/binfmt_misc";

export interface BinfmtHandler {
  name: string;
  enabled: boolean;
  interpreter: string;
  flags: string;
  /** The platform whose ELF binaries it runs (undefined: not an ELF handler we recognise). */
  platform?: Platform;
}

/** ELF e_machine → Go architecture name (with the 32/64-bit and endianness splits that matter). */
function elfArch(machine: number, is64: boolean, bigEndian: boolean): string | undefined {
  switch (machine) {
    case 0x3e:
      return "amd64";
    case 0x03:
      return "386";
    case 0xb7:
      return "arm64";
    case 0x28:
      return "arm";
    case 0xf3:
      return is64 ? "riscv64" : undefined;
    case 0x15:
      return bigEndian ? "ppc64" : "ppc64le";
    case 0x16:
      return "s390x";
    case 0x08:
      return is64 ? (bigEndian ? "mips64" : "mips64le") : bigEndian ? "mips" : "mipsle";
    case 0x102:
      return "loong64";
    default:
      return undefined;
  }
}

/** The platform an ELF magic (as binfmt_misc prints it: hex, at an offset) matches. */
export function platformOfMagic(magicHex: string, offset: number): Platform | undefined {
  if (offset !== 0 || !/^[0-9a-f]+$/i.test(magicHex)) return undefined;
  const b = Buffer.from(magicHex, "hex");
  if (b.length < 20 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = b[4] === 2;
  const bigEndian = b[5] === 2;
  const machine = bigEndian ? b.readUInt16BE(18) : b.readUInt16LE(18);
  const architecture = elfArch(machine, is64, bigEndian);
  if (!architecture) return undefined;
  // qemu-arm runs every ARM level; the handler says nothing about variants, so it counts as the highest (v7).
  return normalizePlatform({ os: "linux", architecture });
}

/** Parse one /proc/sys/fs/binfmt_misc/<name> file. */
export function parseBinfmtEntry(name: string, text: string): BinfmtHandler {
  const lines = text.split("\n");
  const field = (key: string) => lines.find((l) => l.startsWith(`${key} `))?.slice(key.length + 1) ?? "";
  const flags =
    lines
      .find((l) => l.startsWith("flags:"))
      ?.slice("flags:".length)
      .trim() ?? "";
  const platform = platformOfMagic(field("magic"), Number(field("offset") || "0"));
  return { name, enabled: lines[0]?.trim() === "enabled", interpreter: field("interpreter"), flags, ...(platform ? { platform } : {}) };
}

/** The registered handlers (none when binfmt_misc is not mounted). */
export async function binfmtHandlers(dir = BINFMT_DIR): Promise<{ mounted: boolean; enabled: boolean; handlers: BinfmtHandler[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return { mounted: false, enabled: false, handlers: [] };
  }
  if (!names.includes("register")) return { mounted: false, enabled: false, handlers: [] };
  const status = (await readFile(join(dir, "status"), "utf8").catch(() => "")).trim();
  const handlers: BinfmtHandler[] = [];
  for (const n of names.sort()) {
    if (n === "register" || n === "status") continue;
    const text = await readFile(join(dir, n), "utf8").catch(() => undefined);
    if (text !== undefined) handlers.push(parseBinfmtEntry(n, text));
  }
  return { mounted: true, enabled: status === "enabled", handlers };
}

export interface BuildablePlatforms {
  host: Platform;
  /** Platforms the host runs without emulation (its own and older levels: amd64 runs 386). */
  native: Platform[];
  /** Platforms with an enabled, usable (F flag) emulator, each with its handler. */
  emulated: { platform: Platform; handler: BinfmtHandler }[];
  /** Handlers that exist but cannot serve a RUN: disabled, or registered without the F flag. */
  unusable: { handler: BinfmtHandler; why: string }[];
}

/** What this machine can build RUN steps for (`tsbuild platforms`). */
export async function buildablePlatforms(dir = BINFMT_DIR): Promise<BuildablePlatforms> {
  const host = hostPlatform();
  const native = compatiblePlatforms(host);
  const { mounted, enabled, handlers } = await binfmtHandlers(dir);
  const emulated: BuildablePlatforms["emulated"] = [];
  const unusable: BuildablePlatforms["unusable"] = [];
  for (const h of handlers) {
    if (!h.platform || native.some((n) => samePlatform(n, h.platform as Platform))) continue;
    const why = !enabled
      ? "binfmt_misc is disabled"
      : !h.enabled
        ? "the handler is disabled"
        : !h.flags.includes("F")
          ? "registered without the F flag"
          : undefined;
    if (why) unusable.push({ handler: h, why });
    else if (!emulated.some((e) => samePlatform(e.platform, h.platform as Platform))) emulated.push({ platform: h.platform, handler: h });
  }
  if (!mounted) return { host, native, emulated: [], unusable: [] };
  return { host, native, emulated, unusable };
}

/** True when `want` runs here: natively, or through a usable emulator (an arm emulator runs every arm variant). */
export function canRun(b: BuildablePlatforms, want: Platform): boolean {
  const p = normalizePlatform(want);
  if (b.native.some((n) => samePlatform(n, p))) return true;
  return b.emulated.some((e) => e.platform.architecture === p.architecture && e.platform.os === p.os);
}

/** The qemu-user-static binfmt name of an architecture (Debian's /usr/lib/binfmt.d/qemu-<name>.conf). */
function qemuName(architecture: string): string {
  const names: Record<string, string> = {
    arm64: "aarch64",
    amd64: "x86_64",
    "386": "i386",
    ppc64le: "ppc64le",
    mips64le: "mips64el",
    mipsle: "mipsel",
    loong64: "loongarch64",
  };
  return names[architecture] ?? architecture;
}

/**
 * Fail before the build starts when a RUN would need a platform this machine cannot run, saying what to install or
 * register (never a silent wrong-arch binary or a late "exec format error").
 */
export async function requireRunnable(platforms: Platform[], dir = BINFMT_DIR): Promise<void> {
  // Native platforms need no look at /proc: an ordinary host build never reads binfmt_misc.
  const native = compatiblePlatforms(hostPlatform());
  const missing = platforms.filter((p, i) => platforms.findIndex((q) => samePlatform(p, q)) === i && !native.some((n) => samePlatform(n, p)));
  if (missing.length === 0) return;
  const b = await buildablePlatforms(dir);
  for (const p of missing) {
    if (canRun(b, p)) continue;
    const q = qemuName(normalizePlatform(p).architecture);
    const bad = b.unusable.find((u) => u.handler.platform?.architecture === normalizePlatform(p).architecture);
    const can = [...b.native.slice(0, 1), ...b.emulated.map((e) => e.platform)].map(formatPlatform).join(", ");
    throw new EnvironmentError(
      "NO_EMULATOR",
      `cannot run RUN steps for ${formatPlatform(p)} on this ${formatPlatform(b.host)} machine: ${
        bad ? `the binfmt_misc handler ${bad.handler.name} is ${bad.why}` : `no binfmt_misc handler for ${q} is registered`
      } (this machine can run: ${can})`,
      {
        hint: `apt-get install -y qemu-user-static, then register it with the F flag: mount -t binfmt_misc binfmt_misc ${BINFMT_DIR} (if not mounted); cat /usr/lib/binfmt.d/qemu-${q}.conf > ${BINFMT_DIR}/register; \`tsbuild doctor\` lists the emulators found`,
      },
    );
  }
}
