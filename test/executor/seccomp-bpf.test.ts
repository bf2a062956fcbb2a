import { spawn } from "node:child_process";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EnvironmentError } from "../../src/errors.js";
import { DEFAULT_CAPABILITIES } from "../../src/executor/runtime-spec.js";
import { BPF_MAXINSNS, compileSeccompBpf } from "../../src/executor/seccomp-bpf.js";
import { loadSeccompProfile, ociSeccomp, type OciSeccomp, type SeccompArg, type SeccompOperator } from "../../src/executor/seccomp-profile.js";
import { SYSCALLS_AARCH64, SYSCALLS_X86_64 } from "../../src/executor/syscall-numbers.js";
import { makeBusyboxRootfs } from "../helpers/busybox-rootfs.js";
import { AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, checkBpf, RET, runBpf } from "../helpers/cbpf.js";
import { requireTool } from "../helpers/tools.js";

const CLONE_NEWUSER = 0x10000000n;
const SIGCHLD = 17n;
const EPERM = 1;
const ENOSYS = 38;

async function dockerDefault(arch: NodeJS.Architecture, caps: readonly string[] = DEFAULT_CAPABILITIES): Promise<OciSeccomp> {
  return ociSeccomp(await loadSeccompProfile(), { capabilities: caps, arch });
}

describe("the compiled program (interpreted)", () => {
  const cases: [NodeJS.Architecture, number, Readonly<Record<string, number>>][] = [
    ["x64", AUDIT_ARCH_X86_64, SYSCALLS_X86_64],
    ["arm64", AUDIT_ARCH_AARCH64, SYSCALLS_AARCH64],
  ];
  describe.each(cases)("Docker's default on %s", (arch, audit, table) => {
    let prog: Buffer;
    beforeAll(async () => {
      prog = compileSeccompBpf(await dockerDefault(arch), arch);
    });
    const nr = (name: string) => {
      const n = table[name];
      if (n === undefined) throw new Error(`no ${name} on ${arch}`);
      return n;
    };
    const call = (name: string, ...args: bigint[]) => runBpf(prog, { arch: audit, nr: nr(name), args });

    test("is a valid program well under BPF_MAXINSNS", () => {
      checkBpf(prog);
      expect(prog.length / 8).toBeLessThan(400);
    });

    test.each([
      ["read", [], RET.ALLOW],
      ["execve", [], RET.ALLOW],
      ["chown", [], arch === "x64" ? RET.ALLOW : undefined],
      ["mount", [], RET.ERRNO(EPERM)],
      ["umount2", [], RET.ERRNO(EPERM)],
      ["unshare", [CLONE_NEWUSER], RET.ERRNO(EPERM)],
      ["setns", [], RET.ERRNO(EPERM)],
      ["clone", [SIGCHLD], RET.ALLOW],
      ["clone", [CLONE_NEWUSER | SIGCHLD], RET.ERRNO(EPERM)],
      ["clone", [0x20000n /* CLONE_NEWNS */], RET.ERRNO(EPERM)],
      ["clone3", [], RET.ERRNO(ENOSYS)],
      ["personality", [0n], RET.ALLOW],
      ["personality", [8n], RET.ALLOW],
      ["personality", [0xffffffffn], RET.ALLOW],
      ["personality", [0x0040000n /* ADDR_NO_RANDOMIZE */], RET.ERRNO(EPERM)],
      ["personality", [0x1_00000000n], RET.ERRNO(EPERM)], // the high half counts too
      ["bpf", [], RET.ERRNO(EPERM)],
      ["kexec_load", [], RET.ERRNO(EPERM)],
      ["arch_prctl", [], arch === "x64" ? RET.ALLOW : undefined],
    ] as [string, bigint[], number | undefined][])("%s(%s)", (name, args, want) => {
      if (want === undefined) expect(table[name]).toBeUndefined();
      else expect(call(name, ...args)).toBe(want);
    });

    test("an unknown syscall number gets the default action", () => {
      expect(runBpf(prog, { arch: audit, nr: 1000 })).toBe(RET.ERRNO(EPERM));
      expect(runBpf(prog, { arch: audit, nr: 0x3fffffff })).toBe(RET.ERRNO(EPERM));
    });

    test("foreign ABIs: the profile's compat arch gets the default action, others are killed", () => {
      const compat = arch === "x64" ? AUDIT_ARCH_I386 : AUDIT_ARCH_ARM;
      const other = arch === "x64" ? AUDIT_ARCH_AARCH64 : AUDIT_ARCH_X86_64;
      // nr 0 is read on x86_64 (and io_setup on aarch64), allowed natively: the arch decides, not the number.
      expect(runBpf(prog, { arch: compat, nr: 0 })).toBe(RET.ERRNO(EPERM));
      expect(runBpf(prog, { arch: other, nr: 0 })).toBe(RET.KILL_PROCESS);
      expect(runBpf(prog, { arch: 0x1234, nr: 0 })).toBe(RET.KILL_PROCESS);
    });
  });

  test("x32 syscalls (bit 30 in nr) get the default action when SCMP_ARCH_X32 is listed, else kill", async () => {
    const prog = compileSeccompBpf(await dockerDefault("x64"), "x64");
    expect(runBpf(prog, { arch: AUDIT_ARCH_X86_64, nr: 0x40000000 | 39 /* x32 getpid */ })).toBe(RET.ERRNO(EPERM));
    expect(runBpf(prog, { arch: AUDIT_ARCH_X86_64, nr: 39 })).toBe(RET.ALLOW);
    const nativeOnly = compileSeccompBpf({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["getpid"], action: "SCMP_ACT_ALLOW" }] }, "x64");
    expect(runBpf(nativeOnly, { arch: AUDIT_ARCH_X86_64, nr: 0x40000000 | 39 })).toBe(RET.KILL_PROCESS);
    expect(runBpf(nativeOnly, { arch: AUDIT_ARCH_I386, nr: 20 })).toBe(RET.KILL_PROCESS);
  });

  test("with CAP_SYS_ADMIN, clone with namespace flags and mount are allowed", async () => {
    const prog = compileSeccompBpf(await dockerDefault("x64", [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]), "x64");
    expect(runBpf(prog, { arch: AUDIT_ARCH_X86_64, nr: SYSCALLS_X86_64.clone as number, args: [CLONE_NEWUSER | SIGCHLD] })).toBe(RET.ALLOW);
    expect(runBpf(prog, { arch: AUDIT_ARCH_X86_64, nr: SYSCALLS_X86_64.mount as number })).toBe(RET.ALLOW);
    expect(runBpf(prog, { arch: AUDIT_ARCH_X86_64, nr: SYSCALLS_X86_64.clone3 as number })).toBe(RET.ALLOW);
  });
});

describe("argument conditions and actions (interpreted)", () => {
  const READ = SYSCALLS_X86_64.read as number;
  const WRITE = SYSCALLS_X86_64.write as number;
  const x64 = (syscalls: OciSeccomp["syscalls"], extra: Partial<OciSeccomp> = {}) =>
    compileSeccompBpf({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 38, syscalls, ...extra }, "x64");
  const run = (prog: Buffer, nr: number, args: bigint[] = []) => runBpf(prog, { arch: AUDIT_ARCH_X86_64, nr, args });

  const M64 = (1n << 64n) - 1n;
  const reference = (op: SeccompOperator, x: bigint, v: bigint, v2: bigint): boolean => {
    switch (op) {
      case "SCMP_CMP_EQ":
        return x === v;
      case "SCMP_CMP_NE":
        return x !== v;
      case "SCMP_CMP_LT":
        return x < v;
      case "SCMP_CMP_LE":
        return x <= v;
      case "SCMP_CMP_GT":
        return x > v;
      case "SCMP_CMP_GE":
        return x >= v;
      case "SCMP_CMP_MASKED_EQ":
        return (x & v) === v2;
    }
  };
  const ops: SeccompOperator[] = ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"];
  // Values whose halves differ in every way that matters: hi only, lo only, both, the extremes.
  const values = [0n, 5n, 0xffffffffn, 0x1_00000000n, 0x1_00000005n, 0x2_00000004n, 0xfff0_0000_0000n, 2n ** 53n - 1n];
  const probes = [...new Set(values.flatMap((v) => [v - 1n, v, v + 1n, v + 0x1_00000000n, v ^ 0xffffffffn]).concat([M64, M64 - 1n]))].filter(
    (x) => x >= 0n && x <= M64,
  );

  test.each(ops)("%s on 64-bit values: both halves, unsigned", (op) => {
    for (const v of values) {
      const v2 = op === "SCMP_CMP_MASKED_EQ" ? v & 0x1_0000000fn : undefined;
      const arg: SeccompArg = { index: 3, value: Number(v), op, ...(v2 === undefined ? {} : { valueTwo: Number(v2) }) };
      const prog = x64([{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [arg] }]);
      for (const x of probes) {
        const want = reference(op, x, v, v2 ?? 0n) ? RET.ALLOW : RET.ERRNO(38);
        expect(run(prog, READ, [0n, 0n, 0n, x]), `${op} ${x} vs ${v}`).toBe(want);
      }
    }
  });

  test("conditions of one rule are ANDed, rules for one syscall ORed", () => {
    const prog = x64([
      {
        names: ["read"],
        action: "SCMP_ACT_ALLOW",
        args: [
          { index: 0, value: 1, op: "SCMP_CMP_EQ" },
          { index: 2, value: 10, op: "SCMP_CMP_LT" },
        ],
      },
      { names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 7, op: "SCMP_CMP_EQ" }] },
    ]);
    expect(run(prog, READ, [1n, 0n, 9n])).toBe(RET.ALLOW);
    expect(run(prog, READ, [1n, 0n, 10n])).toBe(RET.ERRNO(38));
    expect(run(prog, READ, [2n, 0n, 9n])).toBe(RET.ERRNO(38));
    expect(run(prog, READ, [7n, 0n, 99n])).toBe(RET.ALLOW);
    expect(run(prog, WRITE)).toBe(RET.ERRNO(38));
  });

  test("conditions repeating an argument index become separate rules, as runc does", () => {
    const prog = x64([
      {
        names: ["read"],
        action: "SCMP_ACT_ALLOW",
        args: [
          { index: 0, value: 1, op: "SCMP_CMP_EQ" },
          { index: 0, value: 2, op: "SCMP_CMP_EQ" },
        ],
      },
    ]);
    expect([0n, 1n, 2n, 3n].map((a) => run(prog, READ, [a]))).toEqual([RET.ERRNO(38), RET.ALLOW, RET.ALLOW, RET.ERRNO(38)]);
  });

  test("the most restrictive matching rule wins, whatever the profile order", () => {
    const prog = x64([
      { names: ["read"], action: "SCMP_ACT_ALLOW" },
      { names: ["read"], action: "SCMP_ACT_ERRNO", errnoRet: 5, args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }] },
    ]);
    expect(run(prog, READ, [1n])).toBe(RET.ERRNO(5));
    expect(run(prog, READ, [2n])).toBe(RET.ALLOW);
  });

  test("actions", () => {
    const prog = x64(
      [
        { names: ["read"], action: "SCMP_ACT_KILL" },
        { names: ["write"], action: "SCMP_ACT_KILL_PROCESS" },
        { names: ["open"], action: "SCMP_ACT_TRAP" },
        { names: ["close"], action: "SCMP_ACT_LOG" },
        { names: ["stat"], action: "SCMP_ACT_TRACE", errnoRet: 42 },
        { names: ["fstat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
        { names: ["lstat"], action: "SCMP_ACT_ERRNO" }, // runtime-spec: EPERM when errnoRet is absent
        { names: ["poll"], action: "SCMP_ACT_KILL_THREAD" },
        { names: ["no_such_syscall", "lseek"], action: "SCMP_ACT_ALLOW" }, // unknown names are skipped
      ],
      { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 38 },
    );
    const t = SYSCALLS_X86_64;
    expect(["read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek", "mmap"].map((n) => run(prog, t[n] as number))).toEqual([
      RET.KILL_THREAD,
      RET.KILL_PROCESS,
      RET.TRAP,
      RET.LOG,
      RET.TRACE(42),
      RET.ERRNO(13),
      RET.ERRNO(EPERM),
      RET.KILL_THREAD,
      RET.ALLOW,
      RET.ERRNO(38),
    ]);
    const allowAll = compileSeccompBpf({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mount"], action: "SCMP_ACT_ERRNO" }] }, "x64");
    expect(run(allowAll, t.mount as number)).toBe(RET.ERRNO(EPERM));
    expect(run(allowAll, t.read as number)).toBe(RET.ALLOW);
    const killDefault = compileSeccompBpf({ defaultAction: "SCMP_ACT_KILL_PROCESS", syscalls: [] }, "x64");
    expect(run(killDefault, t.read as number)).toBe(RET.KILL_PROCESS);
  });

  test("programs longer than any 8-bit jump still work: every syscall with its own conditional block", () => {
    const names = Object.keys(SYSCALLS_X86_64).slice(0, 300);
    const prog = x64(names.map((n, i) => ({ names: [n], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 1000 + i, op: "SCMP_CMP_EQ" }] })));
    checkBpf(prog);
    expect(prog.length / 8).toBeGreaterThan(1500);
    for (const [i, n] of names.entries()) {
      const nr = SYSCALLS_X86_64[n] as number;
      expect(run(prog, nr, [0n, BigInt(1000 + i)]), n).toBe(RET.ALLOW);
      expect(run(prog, nr, [0n, BigInt(1001 + i)]), n).toBe(RET.ERRNO(38));
    }
  });

  test("a program past BPF_MAXINSNS is an EnvironmentError, as are NOTIFY and an arch without tables", () => {
    const six: SeccompArg[] = [0, 1, 2, 3, 4, 5].map((index) => ({ index, value: 0x1_00000000 + index, op: "SCMP_CMP_GE" }));
    const huge = Object.keys(SYSCALLS_X86_64).map((n, i) => ({
      names: [n],
      action: "SCMP_ACT_ALLOW" as const,
      args: six.map((a) => ({ ...a, value: a.value + i })),
    }));
    expect(() => x64(huge)).toThrow(new RegExp(`more than the kernel's ${BPF_MAXINSNS}`));
    expect(() => x64([{ names: ["read"], action: "SCMP_ACT_NOTIFY" }])).toThrow(EnvironmentError);
    expect(() => compileSeccompBpf({ defaultAction: "SCMP_ACT_ERRNO" }, "s390x")).toThrow(/no seccomp syscall table for the s390x/);
  });

  test("compiling Docker's default takes milliseconds", async () => {
    const profile = await loadSeccompProfile();
    const t0 = performance.now();
    const prog = compileSeccompBpf(ociSeccomp(profile, { capabilities: DEFAULT_CAPABILITIES, arch: "x64" }), "x64");
    const first = performance.now() - t0;
    const t1 = performance.now();
    for (let i = 0; i < 50; i++) compileSeccompBpf(ociSeccomp(profile, { capabilities: DEFAULT_CAPABILITIES, arch: "x64" }), "x64");
    const warm = (performance.now() - t1) / 50;
    console.log(`seccomp: ${prog.length / 8} instructions; convert+compile ${first.toFixed(2)} ms first, ${warm.toFixed(2)} ms warm`);
    expect(warm).toBeLessThan(50);
  });
});

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Runs a command with fd 3 open on `fd3` (a file path) when given; stdin is closed. */
function spawnWithFd3(cmd: string, args: string[], fd3Path?: string): Promise<Ran> {
  return (async () => {
    const fh = fd3Path === undefined ? undefined : await open(fd3Path, "r");
    try {
      return await new Promise<Ran>((resolve, reject) => {
        const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe", ...(fh ? [fh.fd] : [])] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (c: Buffer) => out.push(c));
        child.stderr.on("data", (c: Buffer) => err.push(c));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() }));
      });
    } finally {
      await fh?.close();
    }
  })();
}

describe("bwrap --seccomp with the compiled program (real kernel)", () => {
  let dir: string;
  let rootfs: string;
  let filter: string; // Docker's default for Docker's capability set
  beforeAll(async () => {
    await requireTool("bwrap");
    dir = await mkdtemp(join(tmpdir(), "tsbuild-seccomp-bwrap-"));
    rootfs = await makeBusyboxRootfs(join(dir, "rootfs"));
    await mkdir(join(rootfs, "mnt"));
    filter = join(dir, "docker.bpf");
    await writeFile(filter, compileSeccompBpf(await dockerDefault(process.arch), process.arch));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The busybox rootfs like the bwrap executor mounts it; `caps` "docker" = Docker's set, "all" = root with every cap. */
  const busybox = (script: string, opts: { seccomp: boolean; caps: "docker" | "all" }) => {
    const a = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--bind", rootfs, "/", "--proc", "/proc", "--dev", "/dev"];
    if (opts.caps === "all") a.push("--cap-add", "ALL");
    else for (const c of ["--cap-drop", "ALL", ...DEFAULT_CAPABILITIES.flatMap((c) => ["--cap-add", c])]) a.push(c);
    if (opts.seccomp) a.push("--seccomp", "3");
    a.push("--chdir", "/", "--clearenv", "--setenv", "PATH", "/bin:/sbin:/usr/bin:/usr/sbin", "--", "/bin/sh", "-c", script);
    return spawnWithFd3("bwrap", a, opts.seccomp ? filter : undefined);
  };
  /** The host's own root, read-only (for perl, which Debian always has: perl-base is essential). */
  const host = (args: string[], seccomp: boolean) =>
    spawnWithFd3(
      "bwrap",
      ["--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", ...(seccomp ? ["--seccomp", "3"] : []), "--", ...args],
      seccomp ? filter : undefined,
    );

  test("the process runs in seccomp filter mode (Seccomp: 2), and 0 without the filter", async () => {
    expect((await busybox("grep Seccomp: /proc/self/status", { seccomp: true, caps: "docker" })).out).toMatch(/^Seccomp:\s+2$/m);
    expect((await busybox("grep Seccomp: /proc/self/status", { seccomp: false, caps: "docker" })).out).toMatch(/^Seccomp:\s+0$/m);
  });

  test("unshare -Urm is denied (it works without the filter)", async () => {
    const without = await busybox("unshare -Urm true && echo ok", { seccomp: false, caps: "docker" });
    expect(without.out).toBe("ok\n");
    const r = await busybox("unshare -Urm true", { seccomp: true, caps: "docker" });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/Operation not permitted/);
  });

  test("mount fails with EPERM even as root with every capability (works without the filter)", async () => {
    const script = "mount -t tmpfs x /mnt && grep -c ' /mnt tmpfs' /proc/mounts";
    expect((await busybox(script, { seccomp: false, caps: "all" })).out).toBe("1\n");
    const r = await busybox(script, { seccomp: true, caps: "all" });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/permission denied|Operation not permitted/i);
  });

  test("ordinary commands behave exactly as without the filter", async () => {
    const script = [
      "set -e",
      "cd /tmp && mkdir -p a/b && echo hi > a/f && cat a/f && cp a/f a/b/g && ls a/b",
      "chmod 640 a/b/g && chown 1000:1000 a/b/g && ls -ln a/b/g | awk '{print $1, $3, $4}'",
      "ln -s f a/l && readlink a/l && ln a/f a/h && stat -c %h a/f",
      "mkfifo a/p && test -p a/p && echo fifo",
      "date +%Y >/dev/null && sleep 0.1 && echo slept",
      "wget -h >/dev/null 2>&1 || echo wget=$?",
      "echo sub $(echo shell) | tr a-z A-Z; true | false || echo pipe",
      "nsenter -G 1000 -S 1000 -- id -u",
      "rm -rf a && echo done",
    ].join("\n");
    const without = await busybox(script, { seccomp: false, caps: "docker" });
    expect(without).toMatchObject({ code: 0, err: "" });
    const withFilter = await busybox(script, { seccomp: true, caps: "docker" });
    expect(withFilter).toEqual(without);
    expect(withFilter.out).toContain("-rw-r----- 1000 1000\n");
    expect(withFilter.out).toContain("1000\ndone\n");
  });

  const t = process.arch === "arm64" ? SYSCALLS_AARCH64 : SYSCALLS_X86_64;
  const perl = (code: string) => ["perl", "-e", `use POSIX; $| = 1; ${code}`];
  // A clone with fork semantics (no new stack): the child leaves at once, the parent reports.
  const cloneWith = (flags: bigint) =>
    perl(
      `my $r = syscall(${t.clone}, ${flags}, 0, 0, 0, 0); POSIX::_exit(0) if $r == 0; waitpid($r, 0) if $r > 0; print $r > 0 ? "ok\\n" : "errno=" . ($! + 0) . "\\n";`,
    );

  test("clone with CLONE_NEWUSER is denied while fork works; clone3 says ENOSYS so libc falls back to clone", async () => {
    await requireTool("perl");
    expect((await host(cloneWith(CLONE_NEWUSER | SIGCHLD), false)).out).toBe("ok\n");
    expect((await host(cloneWith(CLONE_NEWUSER | SIGCHLD), true)).out).toBe(`errno=${EPERM}\n`);
    expect((await host(cloneWith(SIGCHLD), true)).out).toBe("ok\n");
    expect((await host(perl(`my $p = fork(); POSIX::_exit(7) if $p == 0; waitpid($p, 0); print "fork ", $? >> 8, "\\n";`), true)).out).toBe("fork 7\n");
    expect((await host(perl(`syscall(${t.clone3}, 0, 0); print "errno=", $! + 0, "\\n";`), true)).out).toBe(`errno=${ENOSYS}\n`);
  });

  test("personality: only the profile's personas pass", async () => {
    const persona = (p: number) => perl(`my $r = syscall(${t.personality}, ${p}); print $r == -1 ? "errno=" . ($! + 0) : "ok", "\\n";`);
    expect((await host(persona(0xffffffff), true)).out).toBe("ok\n"); // query
    expect((await host(persona(0), true)).out).toBe("ok\n");
    expect((await host(persona(0x0040000), true)).out).toBe(`errno=${EPERM}\n`); // ADDR_NO_RANDOMIZE
    expect((await host(persona(0x0040000), false)).out).toBe("ok\n");
  });

  test.runIf(process.arch === "x64")("x32 syscalls get the default action (EPERM), not the native one", async () => {
    // x32 getpid: nr 39 with __X32_SYSCALL_BIT. Without the filter the kernel runs it or says ENOSYS (no x32 ABI).
    const x32 = perl(`my $r = syscall(0x40000000 | 39); print $r == -1 ? "errno=" . ($! + 0) : "pid", "\\n";`);
    expect((await host(x32, false)).out).toMatch(/^(pid|errno=38)\n$/);
    expect((await host(x32, true)).out).toBe(`errno=${EPERM}\n`);
  });

  test("cost of one bwrap start with and without the filter", async () => {
    const time = async (seccomp: boolean) => {
      await host(["true"], seccomp); // warm the page cache
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) expect((await host(["true"], seccomp)).code).toBe(0);
      return (performance.now() - t0) / 20;
    };
    const without = await time(false);
    const withFilter = await time(true);
    console.log(`bwrap start: ${without.toFixed(2)} ms without seccomp, ${withFilter.toFixed(2)} ms with (Δ ${(withFilter - without).toFixed(2)} ms)`);
  });
});
