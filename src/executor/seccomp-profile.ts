// Seccomp profiles in the moby/containers JSON format, and their conversion to the OCI runtime-spec `linux.seccomp`
// for one capability set and architecture — what moby's profiles/seccomp setupSeccomp does before handing it to runc.
import { readFile } from "node:fs/promises";
import { release } from "node:os";
import { EnvironmentError } from "../errors.js";
import { DEFAULT_SECCOMP_PROFILE } from "./seccomp-default.js";
import { errnoCode } from "../util/errno.js";

/** Podman's/Buildah's profile (Debian: golang-github-containers-common). Looser than Docker's: see loadSeccompProfile. */
export const CONTAINERS_SECCOMP_PATH = "/usr/share/containers/seccomp.json";

export type SeccompAction =
  | "SCMP_ACT_KILL"
  | "SCMP_ACT_KILL_THREAD"
  | "SCMP_ACT_KILL_PROCESS"
  | "SCMP_ACT_TRAP"
  | "SCMP_ACT_ERRNO"
  | "SCMP_ACT_TRACE"
  | "SCMP_ACT_ALLOW"
  | "SCMP_ACT_LOG"
  | "SCMP_ACT_NOTIFY";

export type SeccompOperator = "SCMP_CMP_NE" | "SCMP_CMP_LT" | "SCMP_CMP_LE" | "SCMP_CMP_EQ" | "SCMP_CMP_GE" | "SCMP_CMP_GT" | "SCMP_CMP_MASKED_EQ";

const ACTIONS: ReadonlySet<string> = new Set<SeccompAction>([
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
]);
const OPERATORS: ReadonlySet<string> = new Set<SeccompOperator>([
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
]);

/** One argument comparison; for SCMP_CMP_MASKED_EQ `value` is the mask and `valueTwo` the expected masked value. */
export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOperator;
}

/** A rule applies only if the filter matches: all `caps` in the bounding set, arch listed, kernel at least `minKernel`. */
export interface SeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface ContainersSeccompSyscall {
  name?: string;
  names?: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
  /** containers/common also writes the errno's name; errnoRet is what counts. */
  errno?: string;
}

/** The profile file format shared by moby (profiles/seccomp/default.json) and containers/common (seccomp.json). */
export interface ContainersSeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  defaultErrno?: string;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[];
  flags?: string[];
  syscalls: ContainersSeccompSyscall[];
}

export interface OciSeccompSyscall {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[];
}

/** runtime-spec config-linux.md "Seccomp" (crun and runc accept it as `linux.seccomp`). */
export interface OciSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  syscalls?: OciSeccompSyscall[];
}

export interface OciSeccompOptions {
  /** The container's bounding capability set ("CAP_SYS_ADMIN", ...): what includes/excludes.caps test. */
  capabilities: readonly string[];
  arch: NodeJS.Architecture;
  /** Kernel release for minKernel rules; default os.release(). */
  kernelRelease?: string;
}

/** Node arch → libseccomp's arch name (what includes/excludes.arches use) and the SCMP_ARCH_* archMap key. */
const ARCHES: Partial<Record<NodeJS.Architecture, { native: string; scmp: string }>> = {
  x64: { native: "amd64", scmp: "SCMP_ARCH_X86_64" },
  arm64: { native: "arm64", scmp: "SCMP_ARCH_AARCH64" },
  ia32: { native: "x86", scmp: "SCMP_ARCH_X86" },
  arm: { native: "arm", scmp: "SCMP_ARCH_ARM" },
  s390x: { native: "s390x", scmp: "SCMP_ARCH_S390X" },
  // Node on Linux/POWER is little-endian only.
  ppc64: { native: "ppc64le", scmp: "SCMP_ARCH_PPC64LE" },
  riscv64: { native: "riscv64", scmp: "SCMP_ARCH_RISCV64" },
};

/**
 * The profile to use. Without a path: Docker's default (moby 20.10.24, kept in the project) — not
 * CONTAINERS_SECCOMP_PATH, because containers/common's profile allows clone/unshare/mount/setns without
 * CAP_SYS_ADMIN (user namespaces in a RUN would work where Docker's builds get EPERM). With a path: that file;
 * a missing, unparsable or malformed file is an EnvironmentError naming it — never a silent fallback, since a
 * caller that names a profile means that one.
 */
export async function loadSeccompProfile(path?: string): Promise<ContainersSeccompProfile> {
  if (path === undefined) return DEFAULT_SECCOMP_PROFILE;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new EnvironmentError("SECCOMP_PROFILE", `cannot read the seccomp profile ${path}: ${errnoCode(cause) ?? String(cause)}`, {
      hint: "name an existing JSON profile, or leave it out for Docker's default",
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw profileError(path, `is not JSON (${(cause as Error).message})`, cause);
  }
  return parseSeccompProfile(json, path);
}

function profileError(source: string, what: string, cause?: unknown): EnvironmentError {
  return new EnvironmentError("SECCOMP_PROFILE", `seccomp profile ${source} ${what}`, {
    hint: "fix the profile (format of moby's profiles/seccomp/default.json), or leave it out for Docker's default",
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Checks a parsed profile's shape so later stages can trust it; `source` names it in errors. */
export function parseSeccompProfile(json: unknown, source: string): ContainersSeccompProfile {
  const fail = (where: string, what: string): never => {
    throw profileError(source, `${where}: ${what}`);
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  const strings = (v: unknown, where: string): string[] => {
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) fail(where, "must be a list of strings");
    return v as string[];
  };
  const uint = (v: unknown, where: string, max: number): number => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) {
      fail(
        where,
        `must be an integer from 0 to ${max}${typeof v === "number" && v > Number.MAX_SAFE_INTEGER ? " (values past 2^53 are not exact in JSON numbers here)" : ""}`,
      );
    }
    return v as number;
  };
  const action = (v: unknown, where: string): SeccompAction => {
    if (typeof v !== "string" || !ACTIONS.has(v)) fail(where, `unknown action ${JSON.stringify(v)}`);
    return v as SeccompAction;
  };
  const filter = (v: unknown, where: string): SeccompFilter => {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) return fail(where, "must be an object");
    const f: SeccompFilter = {};
    if (v.caps !== undefined && v.caps !== null) f.caps = strings(v.caps, `${where}.caps`);
    if (v.arches !== undefined && v.arches !== null) f.arches = strings(v.arches, `${where}.arches`);
    if (v.minKernel !== undefined && v.minKernel !== null && v.minKernel !== "") {
      if (typeof v.minKernel !== "string" || !/^\d+\.\d+$/.test(v.minKernel)) fail(`${where}.minKernel`, 'must be "<kernel>.<major>", e.g. "4.8"');
      f.minKernel = v.minKernel as string;
    }
    return f;
  };
  if (!isObj(json)) return fail("top level", "must be an object");
  const profile: ContainersSeccompProfile = { defaultAction: action(json.defaultAction, "defaultAction"), syscalls: [] };
  if (json.defaultErrnoRet !== undefined && json.defaultErrnoRet !== null) profile.defaultErrnoRet = uint(json.defaultErrnoRet, "defaultErrnoRet", 0xffff);
  if (json.architectures !== undefined && json.architectures !== null) profile.architectures = strings(json.architectures, "architectures");
  if (json.flags !== undefined && json.flags !== null) profile.flags = strings(json.flags, "flags");
  if (json.archMap !== undefined && json.archMap !== null) {
    if (!Array.isArray(json.archMap)) return fail("archMap", "must be a list");
    profile.archMap = json.archMap.map((a: unknown, i) => {
      if (!isObj(a) || typeof a.architecture !== "string") return fail(`archMap[${i}]`, "needs an architecture");
      return {
        architecture: a.architecture,
        subArchitectures: a.subArchitectures == null ? [] : strings(a.subArchitectures, `archMap[${i}].subArchitectures`),
      };
    });
  }
  if (profile.architectures?.length && profile.archMap?.length) fail("top level", "has both architectures and archMap; use one");
  if (json.syscalls !== undefined && json.syscalls !== null && !Array.isArray(json.syscalls)) fail("syscalls", "must be a list");
  for (const [i, s] of ((json.syscalls as unknown[] | undefined) ?? []).entries()) {
    const where = `syscalls[${i}]`;
    if (!isObj(s)) return fail(where, "must be an object");
    const rule: ContainersSeccompSyscall = { action: action(s.action, `${where}.action`) };
    if (typeof s.name === "string" && s.name !== "") rule.name = s.name;
    if (s.names !== undefined && s.names !== null) rule.names = strings(s.names, `${where}.names`);
    if (rule.name !== undefined && rule.names?.length) fail(where, "has both name and names; use one");
    if (s.errnoRet !== undefined && s.errnoRet !== null) rule.errnoRet = uint(s.errnoRet, `${where}.errnoRet`, 0xffff);
    if (s.args !== undefined && s.args !== null) {
      if (!Array.isArray(s.args)) return fail(`${where}.args`, "must be a list");
      rule.args = s.args.map((a: unknown, j) => {
        const w = `${where}.args[${j}]`;
        if (!isObj(a)) return fail(w, "must be an object");
        if (typeof a.op !== "string" || !OPERATORS.has(a.op)) fail(`${w}.op`, `unknown operator ${JSON.stringify(a.op)}`);
        const arg: SeccompArg = {
          index: uint(a.index, `${w}.index`, 5),
          value: uint(a.value, `${w}.value`, Number.MAX_SAFE_INTEGER),
          op: a.op as SeccompOperator,
        };
        if (a.valueTwo !== undefined && a.valueTwo !== null) arg.valueTwo = uint(a.valueTwo, `${w}.valueTwo`, Number.MAX_SAFE_INTEGER);
        return arg;
      });
    }
    rule.includes = filter(s.includes, `${where}.includes`);
    rule.excludes = filter(s.excludes, `${where}.excludes`);
    profile.syscalls.push(rule);
  }
  return profile;
}

/** "6.1.0-18-amd64" → [6, 1]; undefined when unparsable (moby errors out; we treat minKernel rules as not met). */
function kernelVersion(rel: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function kernelAtLeast(min: string, rel: string): boolean {
  const have = kernelVersion(rel);
  const want = kernelVersion(min);
  if (!have || !want) return false;
  return have[0] > want[0] || (have[0] === want[0] && have[1] >= want[1]);
}

/**
 * The OCI `linux.seccomp` for a container with bounding set `capabilities` on `arch` (moby setupSeccomp):
 * a rule is dropped if any excludes.caps is held, the arch is excluded, or the kernel reaches excludes.minKernel;
 * and kept only if all includes.caps are held, the arch is included and the kernel reaches includes.minKernel.
 * archMap → architectures: the host arch and its sub-arches (x86_64: X86_64, X86, X32; aarch64: AARCH64, ARM).
 */
export function ociSeccomp(profile: ContainersSeccompProfile, opts: OciSeccompOptions): OciSeccomp {
  const caps = new Set(opts.capabilities);
  const arch = ARCHES[opts.arch];
  const rel = opts.kernelRelease ?? release();
  const out: OciSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.flags?.length) out.flags = [...profile.flags];
  if (profile.architectures?.length) out.architectures = [...profile.architectures];
  else if (arch) {
    const entry = profile.archMap?.find((a) => a.architecture === arch.scmp);
    if (entry) out.architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  }
  const native = arch?.native ?? "";
  const syscalls: OciSeccompSyscall[] = [];
  for (const rule of profile.syscalls) {
    const ex = rule.excludes ?? {};
    const inc = rule.includes ?? {};
    if (ex.arches?.includes(native)) continue;
    if (ex.caps?.some((c) => caps.has(c))) continue;
    if (ex.minKernel !== undefined && kernelAtLeast(ex.minKernel, rel)) continue;
    if (inc.arches?.length && !inc.arches.includes(native)) continue;
    if (inc.caps?.some((c) => !caps.has(c))) continue;
    if (inc.minKernel !== undefined && !kernelAtLeast(inc.minKernel, rel)) continue;
    const names = rule.names?.length ? [...rule.names] : rule.name !== undefined ? [rule.name] : [];
    if (names.length === 0) continue;
    const call: OciSeccompSyscall = { names, action: rule.action };
    if (rule.errnoRet !== undefined) call.errnoRet = rule.errnoRet;
    if (rule.args?.length) call.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(call);
  }
  out.syscalls = syscalls;
  return out;
}
