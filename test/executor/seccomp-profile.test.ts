import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EnvironmentError } from "../../src/errors.js";
import { DEFAULT_CAPABILITIES } from "../../src/executor/runtime-spec.js";
import { CONTAINERS_SECCOMP_PATH, loadSeccompProfile, ociSeccomp, type OciSeccomp } from "../../src/executor/seccomp-profile.js";

/** The rules naming `name`, as [action, errnoRet, args] — what a runtime sees for that syscall. */
function rulesFor(oci: OciSeccomp, name: string) {
  return (oci.syscalls ?? []).filter((s) => s.names.includes(name)).map((s) => [s.action, s.errnoRet, s.args ?? []] as const);
}
const unconditionallyAllowed = (oci: OciSeccomp, name: string) => rulesFor(oci, name).some(([a, , args]) => a === "SCMP_ACT_ALLOW" && args.length === 0);

describe("Docker's default profile", () => {
  const x64 = async (caps: readonly string[] = DEFAULT_CAPABILITIES, kernelRelease = "6.1.0-18-amd64") =>
    ociSeccomp(await loadSeccompProfile(), { capabilities: caps, arch: "x64", kernelRelease });

  test("is the one without a path, with EPERM as the default", async () => {
    const p = await loadSeccompProfile();
    expect(p.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(p.defaultErrnoRet).toBeUndefined(); // runtimes then return EPERM
    expect(p.syscalls.length).toBeGreaterThan(20);
  });

  test("archMap → the host arch and its sub-arches", async () => {
    expect((await x64()).architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    const arm = ociSeccomp(await loadSeccompProfile(), { capabilities: DEFAULT_CAPABILITIES, arch: "arm64" });
    expect(arm.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  });

  test("without CAP_SYS_ADMIN: mount/unshare/setns denied, clone only without namespace flags, clone3 ENOSYS", async () => {
    const oci = await x64();
    for (const name of ["mount", "umount2", "unshare", "setns", "pivot_root", "bpf", "fsopen", "sethostname"]) {
      expect(rulesFor(oci, name), name).toEqual([]); // → the default action, EPERM
    }
    // CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET must all be clear.
    expect(rulesFor(oci, "clone")).toEqual([["SCMP_ACT_ALLOW", undefined, [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }]]]);
    expect(rulesFor(oci, "clone3")).toEqual([["SCMP_ACT_ERRNO", 38, []]]);
    expect(unconditionallyAllowed(oci, "read")).toBe(true);
    expect(unconditionallyAllowed(oci, "chroot")).toBe(true); // CAP_SYS_CHROOT is in Docker's set
    expect(unconditionallyAllowed(oci, "ptrace")).toBe(true); // includes.minKernel 4.8
  });

  test("with CAP_SYS_ADMIN: the namespace and mount calls are allowed and the clone rules drop out", async () => {
    const oci = await x64([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]);
    for (const name of ["mount", "unshare", "setns", "clone", "clone3"]) expect(unconditionallyAllowed(oci, name), name).toBe(true);
    expect(rulesFor(oci, "clone")).toHaveLength(1);
    expect(rulesFor(oci, "clone3")).toEqual([["SCMP_ACT_ALLOW", undefined, []]]);
  });

  test("caps include rules: CAP_SYS_TIME, CAP_SYS_PTRACE", async () => {
    expect(unconditionallyAllowed(await x64(), "settimeofday")).toBe(false);
    expect(unconditionallyAllowed(await x64([...DEFAULT_CAPABILITIES, "CAP_SYS_TIME"]), "settimeofday")).toBe(true);
    expect(unconditionallyAllowed(await x64(), "process_vm_readv")).toBe(false);
    expect(unconditionallyAllowed(await x64(["CAP_SYS_PTRACE"]), "process_vm_readv")).toBe(true);
  });

  test("arches include rules: arch_prctl on x86_64 only, arm_fadvise64_64 on arm64 only", async () => {
    const arm = ociSeccomp(await loadSeccompProfile(), { capabilities: DEFAULT_CAPABILITIES, arch: "arm64" });
    expect(unconditionallyAllowed(await x64(), "arch_prctl")).toBe(true);
    expect(unconditionallyAllowed(arm, "arch_prctl")).toBe(false);
    expect(unconditionallyAllowed(arm, "arm_fadvise64_64")).toBe(true);
    expect(unconditionallyAllowed(await x64(), "arm_fadvise64_64")).toBe(false);
  });

  test("minKernel: ptrace (4.8+) is left to CAP_SYS_PTRACE on older kernels", async () => {
    expect(unconditionallyAllowed(await x64(DEFAULT_CAPABILITIES, "4.4.0-generic"), "ptrace")).toBe(false);
    expect(unconditionallyAllowed(await x64(DEFAULT_CAPABILITIES, "4.8.0"), "ptrace")).toBe(true);
  });

  test("personality keeps its argument rules", async () => {
    const values = rulesFor(await x64(), "personality").map(([, , args]) => args[0]?.value);
    expect(values).toEqual([0, 8, 131072, 131080, 4294967295]);
  });
});

describe("profile files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tsbuild-seccomp-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const write = async (name: string, body: unknown) => {
    const p = join(dir, name);
    await writeFile(p, typeof body === "string" ? body : JSON.stringify(body));
    return p;
  };

  test("containers/common's seccomp.json loads and converts (but allows unshare without CAP_SYS_ADMIN)", async () => {
    await access(CONTAINERS_SECCOMP_PATH).catch(() => {
      throw new Error(`${CONTAINERS_SECCOMP_PATH} is missing: apt-get install -y golang-github-containers-common (skopeo depends on it)`);
    });
    const oci = ociSeccomp(await loadSeccompProfile(CONTAINERS_SECCOMP_PATH), { capabilities: DEFAULT_CAPABILITIES, arch: "x64" });
    expect(oci.defaultErrnoRet).toBe(38);
    expect(oci.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    expect(unconditionallyAllowed(oci, "unshare")).toBe(true);
    // excludes.caps CAP_AUDIT_WRITE: Docker's set has it, so only the unconditional socket rule remains.
    expect(rulesFor(oci, "socket")).toEqual([["SCMP_ACT_ALLOW", undefined, []]]);
  });

  test("name, defaultErrnoRet, architectures and valueTwo pass through", async () => {
    const p = await write("old.json", {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 38,
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ name: "read", action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 3, valueTwo: 1, op: "SCMP_CMP_MASKED_EQ" }] }],
    });
    expect(ociSeccomp(await loadSeccompProfile(p), { capabilities: [], arch: "x64" })).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 38,
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 3, valueTwo: 1, op: "SCMP_CMP_MASKED_EQ" }] }],
    });
  });

  const broken: [string, unknown, RegExp][] = [
    ["not JSON", "{", /not JSON/],
    ["unknown action", { defaultAction: "SCMP_ACT_MAYBE", syscalls: [] }, /defaultAction: unknown action "SCMP_ACT_MAYBE"/],
    [
      "unknown operator",
      { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_ABOUT" }] }] },
      /syscalls\[0\]\.args\[0\]\.op: unknown operator/,
    ],
    [
      "argument index 6",
      { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] }] },
      /args\[0\]\.index: must be an integer from 0 to 5/,
    ],
    [
      "both arch forms",
      { defaultAction: "SCMP_ACT_ERRNO", architectures: ["SCMP_ARCH_X86_64"], archMap: [{ architecture: "SCMP_ARCH_X86_64" }], syscalls: [] },
      /both architectures and archMap/,
    ],
    [
      "bad minKernel",
      { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4" } }] },
      /minKernel/,
    ],
  ];
  test.each(broken)("%s → EnvironmentError naming the file and the field", async (name, body, message) => {
    const p = await write(`${name.replace(/\W/g, "_")}.json`, body);
    const err = await loadSeccompProfile(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).code).toBe("SECCOMP_PROFILE");
    expect((err as Error).message).toContain(p);
    expect((err as Error).message).toMatch(message);
    expect((err as EnvironmentError).hint).toBeTruthy();
  });

  test("a missing file is an EnvironmentError naming it, not a silent fallback", async () => {
    const p = join(dir, "nope.json");
    await expect(loadSeccompProfile(p)).rejects.toThrow(new RegExp(`cannot read the seccomp profile ${p}: ENOENT`));
  });
});
