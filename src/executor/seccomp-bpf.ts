// Compiles an OCI seccomp config to a classic BPF program (struct sock_filter[], little-endian) for `bwrap --seccomp FD`,
// which has no libseccomp of its own: arch check, a binary search over syscall-number ranges, then per-syscall rule blocks.
import { EnvironmentError } from "../errors.js";
import type { OciSeccomp, OciSeccompSyscall, SeccompAction, SeccompArg } from "./seccomp-profile.js";
import { SYSCALLS_AARCH64, SYSCALLS_X86_64 } from "./syscall-numbers.js";

/** The kernel's limit on one filter (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

// Opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JMP_JA = 0x05;
const JMP_JEQ_K = 0x15;
const JMP_JGT_K = 0x25;
const JMP_JGE_K = 0x35;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;

// seccomp return values (linux/seccomp.h).
const RET_KILL_PROCESS = 0x80000000;
const RET_KILL_THREAD = 0x00000000;
const RET_TRAP = 0x00030000;
const RET_ERRNO = 0x00050000;
const RET_TRACE = 0x7ff00000;
const RET_LOG = 0x7ffc0000;
const RET_ALLOW = 0x7fff0000;
const EPERM = 1;

// struct seccomp_data offsets; args are u64, little-endian on both supported arches.
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLo = (i: number) => 16 + 8 * i;
const argHi = (i: number) => 20 + 8 * i;

const X32_SYSCALL_BIT = 0x40000000;

interface ArchInfo {
  audit: number;
  table: Readonly<Record<string, number>>;
  /** Compat ABIs of this CPU: AUDIT_ARCH value (or "x32" for x86_64's nr bit) and the SCMP_ARCH that names it. */
  compat: { audit: number | "x32"; scmp: string }[];
}

const ARCHES: Partial<Record<NodeJS.Architecture, ArchInfo>> = {
  x64: {
    audit: 0xc000003e, // AUDIT_ARCH_X86_64
    table: SYSCALLS_X86_64,
    compat: [
      { audit: 0x40000003, scmp: "SCMP_ARCH_X86" }, // AUDIT_ARCH_I386
      { audit: "x32", scmp: "SCMP_ARCH_X32" },
    ],
  },
  arm64: {
    audit: 0xc00000b7, // AUDIT_ARCH_AARCH64
    table: SYSCALLS_AARCH64,
    compat: [{ audit: 0x40000028, scmp: "SCMP_ARCH_ARM" }], // AUDIT_ARCH_ARM
  },
};

/** Which syscall tables this compiler has. */
export function seccompBpfSupported(arch: NodeJS.Architecture): boolean {
  return ARCHES[arch] !== undefined;
}

/** One instruction; `target` (a label) is resolved to a `ja` offset at the end. */
interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
  target?: string;
}

const ins = (code: number, k: number, jt = 0, jf = 0): Insn => ({ code, jt, jf, k: k >>> 0 });

function seccompError(message: string, hint: string): EnvironmentError {
  return new EnvironmentError("SECCOMP_PROFILE", message, { hint });
}

function actionValue(action: SeccompAction, errnoRet: number | undefined, where: string): number {
  switch (action) {
    case "SCMP_ACT_ALLOW":
      return RET_ALLOW;
    case "SCMP_ACT_ERRNO":
      return RET_ERRNO | ((errnoRet ?? EPERM) & 0xffff);
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return RET_KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS":
      return RET_KILL_PROCESS;
    case "SCMP_ACT_TRAP":
      return RET_TRAP;
    case "SCMP_ACT_LOG":
      return RET_LOG;
    case "SCMP_ACT_TRACE":
      return RET_TRACE | ((errnoRet ?? EPERM) & 0xffff);
    case "SCMP_ACT_NOTIFY":
      throw seccompError(
        `seccomp ${where}: SCMP_ACT_NOTIFY needs a listener, which bubblewrap does not provide`,
        "use another action, or the crun/runc executor",
      );
  }
}

/** The kernel's precedence between filter results: the most restrictive matching rule of a syscall wins. */
function precedence(ret: number): number {
  const action = ret & 0xffff0000;
  if (ret === RET_KILL_PROCESS) return 0;
  if (action === RET_KILL_THREAD) return 1;
  if (action === RET_TRAP) return 2;
  if (action === RET_ERRNO) return 3;
  if (action === RET_TRACE) return 5;
  if (action === RET_LOG) return 6;
  return 7;
}

interface Rule {
  ret: number;
  args: SeccompArg[];
}

const split64 = (v: number): [hi: number, lo: number] => [Math.floor(v / 0x100000000) >>> 0, v >>> 0];

/**
 * Code for one comparison that falls through when it holds; jumps marked FAIL are patched to the next rule.
 * Both 32-bit halves are compared (unsigned 64-bit, as libseccomp does).
 */
function compare(arg: SeccompArg): (Insn | "FAIL-jt" | "FAIL-jf")[] {
  const [hi, lo] = split64(arg.value);
  const out: (Insn | "FAIL-jt" | "FAIL-jf")[] = [];
  const ldHi = ins(LD_W_ABS, argHi(arg.index));
  const ldLo = ins(LD_W_ABS, argLo(arg.index));
  // A conditional jump followed by its FAIL marker: the marker says which branch leaves the rule.
  const j = (code: number, k: number, jt: number, jf: number, fail: "jt" | "jf") => out.push(ins(code, k, jt, jf), `FAIL-${fail}`);
  switch (arg.op) {
    case "SCMP_CMP_EQ":
      (out.push(ldHi), j(JMP_JEQ_K, hi, 0, 0, "jf"));
      (out.push(ldLo), j(JMP_JEQ_K, lo, 0, 0, "jf"));
      break;
    case "SCMP_CMP_NE":
      out.push(ldHi, ins(JMP_JEQ_K, hi, 0, 2)); // high halves differ → holds
      (out.push(ldLo), j(JMP_JEQ_K, lo, 0, 0, "jt"));
      break;
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      out.push(ldHi, ins(JMP_JGT_K, hi, 3, 0)); // hi > H → holds (skip jeq, ld, test)
      j(JMP_JEQ_K, hi, 0, 0, "jf"); // hi < H → fails
      (out.push(ldLo), j(arg.op === "SCMP_CMP_GT" ? JMP_JGT_K : JMP_JGE_K, lo, 0, 0, "jf"));
      break;
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE":
      (out.push(ldHi), j(JMP_JGT_K, hi, 0, 0, "jt")); // hi > H → fails
      out.push(ins(JMP_JEQ_K, hi, 0, 2)); // hi < H → holds (skip ld, test)
      (out.push(ldLo), j(arg.op === "SCMP_CMP_LT" ? JMP_JGE_K : JMP_JGT_K, lo, 0, 0, "jt"));
      break;
    case "SCMP_CMP_MASKED_EQ": {
      const [mhi, mlo] = split64(arg.value);
      const [vhi, vlo] = split64(arg.valueTwo ?? 0);
      // (x & 0) == 0 always holds: skip the half that the mask leaves out.
      if (mhi !== 0 || vhi !== 0) (out.push(ldHi, ins(ALU_AND_K, mhi)), j(JMP_JEQ_K, vhi, 0, 0, "jf"));
      if (mlo !== 0 || vlo !== 0) (out.push(ldLo, ins(ALU_AND_K, mlo)), j(JMP_JEQ_K, vlo, 0, 0, "jf"));
      break;
    }
  }
  return out;
}

/** A rule block: each conditional rule in turn (falling to the next when a condition fails), then `fallback`. */
function ruleBlock(rules: Rule[], fallback: number): Insn[] {
  const code: Insn[] = [];
  for (const rule of rules) {
    if (rule.args.length === 0) {
      code.push(ins(RET_K, rule.ret));
      return code; // nothing after an unconditional rule is reachable
    }
    const body: (Insn | "FAIL-jt" | "FAIL-jf")[] = rule.args.flatMap(compare);
    body.push(ins(RET_K, rule.ret));
    const real = body.filter((x): x is Insn => typeof x !== "string");
    let pc = -1;
    for (const item of body) {
      if (typeof item !== "string") {
        pc++;
        continue;
      }
      const off = real.length - (pc + 1); // from the instruction after the jump to the end of this rule
      if (off > 255) throw seccompError("seccomp rule has too many argument conditions for one BPF block", "split the rule");
      const jump = real[pc] as Insn;
      if (item === "FAIL-jt") jump.jt = off;
      else jump.jf = off;
    }
    code.push(...real);
  }
  code.push(ins(RET_K, fallback));
  return code;
}

/** runc's rule semantics: conditions of one rule are ANDed, but repeated argument indexes become separate (ORed) rules. */
function expandRules(call: OciSeccompSyscall, ret: number): Rule[] {
  const args = call.args ?? [];
  const indexes = new Set(args.map((a) => a.index));
  if (indexes.size === args.length) return [{ ret, args }];
  return args.map((a) => ({ ret, args: [a] }));
}

/**
 * A BPF program equivalent to `seccomp` for the native ABI of `arch` (x64 or arm64). Syscalls the arch's table
 * lacks are skipped, as libseccomp does. Calls from the compat ABIs listed in `architectures` (i386 and x32 on
 * x86_64, arm on aarch64) get the default action (no tables for them here); any other audit arch is killed.
 */
export function compileSeccompBpf(seccomp: OciSeccomp, arch: NodeJS.Architecture): Buffer {
  const info = ARCHES[arch];
  if (!info) throw seccompError(`no seccomp syscall table for the ${arch} architecture`, "use the crun or runc executor, or run on x86_64 or aarch64");
  const defaultRet = actionValue(seccomp.defaultAction, seccomp.defaultErrnoRet, "defaultAction");
  const listed = new Set(seccomp.architectures ?? []);

  // Rules per syscall number, most restrictive first (stable, so profile order breaks ties).
  const perNr = new Map<number, Rule[]>();
  for (const [i, call] of (seccomp.syscalls ?? []).entries()) {
    const ret = actionValue(call.action, call.errnoRet, `syscalls[${i}]`);
    for (const name of call.names) {
      const nr = info.table[name];
      if (nr === undefined) continue;
      const list = perNr.get(nr) ?? [];
      list.push(...expandRules(call, ret));
      perNr.set(nr, list);
    }
  }
  // Blocks shared between syscalls with the same rules; a lone unconditional rule is a leaf `ret`, no block.
  // A leaf is "ret:<value>" or "block:<key>"; undefined means the default action.
  type Leaf = string;
  const blocks = new Map<string, Insn[]>();
  const leafOf = new Map<number, Leaf>();
  for (const [nr, rules] of perNr) {
    rules.sort((a, b) => precedence(a.ret) - precedence(b.ret));
    const cut = rules.findIndex((r) => r.args.length === 0);
    const live = cut === -1 ? rules : rules.slice(0, cut + 1);
    const first = live[0];
    if (live.length === 1 && first && first.args.length === 0) {
      if (first.ret !== defaultRet) leafOf.set(nr, `ret:${first.ret}`);
      continue;
    }
    const key = JSON.stringify(live);
    if (!blocks.has(key)) blocks.set(key, ruleBlock(live, defaultRet));
    leafOf.set(nr, `block:${key}`);
  }

  // Segments [start, next start) of syscall numbers with the same leaf; gaps take the default action.
  const segments: { start: number; leaf: Leaf | undefined }[] = [];
  const push = (start: number, leaf: Leaf | undefined) => {
    const last = segments.at(-1);
    if (!last || last.leaf !== leaf) segments.push({ start, leaf });
  };
  let next = 0; // first syscall number not yet covered
  for (const nr of [...leafOf.keys()].sort((a, b) => a - b)) {
    if (nr > next) push(next, undefined);
    push(nr, leafOf.get(nr));
    next = nr + 1;
  }
  push(next, undefined);

  const prog: Insn[] = [];
  const labels = new Map<string, number>();
  const leafInsn = (leaf: Leaf | undefined): Insn =>
    leaf === undefined ? ins(RET_K, defaultRet) : leaf.startsWith("ret:") ? ins(RET_K, Number(leaf.slice(4))) : { ...ins(JMP_JA, 0), target: leaf };

  // Arch check first: a filter must never read nr of one ABI with another ABI's table.
  prog.push(ins(LD_W_ABS, OFF_ARCH));
  prog.push(ins(JMP_JEQ_K, info.audit, 1, 0)); // native → skip the jump to the foreign-ABI section
  prog.push({ ...ins(JMP_JA, 0), target: "foreign" });
  prog.push(ins(LD_W_ABS, OFF_NR));
  if (info.compat.some((c) => c.audit === "x32")) {
    // x32 syscalls come in as AUDIT_ARCH_X86_64 with bit 30 set in nr.
    const x32Listed = listed.has("SCMP_ARCH_X32");
    prog.push(ins(JMP_JSET_K, X32_SYSCALL_BIT, 0, 1), ins(RET_K, x32Listed ? defaultRet : RET_KILL_PROCESS));
  }

  // Binary search over segment starts: `jge` only ever jumps 0 or 1 ahead; far targets go through `ja` (32-bit).
  let labelSeq = 0;
  const emitTree = (lo: number, hi: number): void => {
    if (lo === hi) {
      prog.push(leafInsn(segments[lo]?.leaf));
      return;
    }
    const mid = (lo + hi + 1) >> 1;
    const start = (segments[mid] as { start: number }).start;
    if (mid === hi) {
      // The right side is one leaf: put it right under the test.
      prog.push(ins(JMP_JGE_K, start, 0, 1), leafInsn(segments[hi]?.leaf));
      emitTree(lo, mid - 1);
      return;
    }
    const right = `tree:${labelSeq++}`;
    prog.push(ins(JMP_JGE_K, start, 0, 1), { ...ins(JMP_JA, 0), target: right });
    emitTree(lo, mid - 1);
    labels.set(right, prog.length);
    emitTree(mid, hi);
  };
  emitTree(0, segments.length - 1);

  // Foreign ABIs: the compat ones the profile names get the default action, anything else is killed.
  labels.set("foreign", prog.length);
  for (const c of info.compat) {
    if (c.audit !== "x32" && listed.has(c.scmp)) prog.push(ins(JMP_JEQ_K, c.audit, 0, 1), ins(RET_K, defaultRet));
  }
  prog.push(ins(RET_K, RET_KILL_PROCESS));

  for (const [key, code] of blocks) {
    labels.set(`block:${key}`, prog.length);
    prog.push(...code);
  }
  if (prog.length > BPF_MAXINSNS) {
    throw seccompError(
      `the seccomp program has ${prog.length} instructions, more than the kernel's ${BPF_MAXINSNS}`,
      "use a smaller profile, or the crun/runc executor",
    );
  }

  const buf = Buffer.alloc(prog.length * 8);
  for (const [pc, insn] of prog.entries()) {
    let k = insn.k;
    if (insn.target !== undefined) {
      const at = labels.get(insn.target);
      if (at === undefined) throw new Error(`internal: unresolved BPF label ${insn.target}`);
      k = at - (pc + 1);
    }
    buf.writeUInt16LE(insn.code, pc * 8);
    buf.writeUInt8(insn.jt, pc * 8 + 2);
    buf.writeUInt8(insn.jf, pc * 8 + 3);
    buf.writeUInt32LE(k >>> 0, pc * 8 + 4);
  }
  return buf;
}
