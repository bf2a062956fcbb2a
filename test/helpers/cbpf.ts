// A classic-BPF interpreter for seccomp programs, to test compiled filters on any arch and syscall without a kernel;
// it rejects what the kernel's checker would (unknown opcodes, jumps out of the program, unaligned loads).

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_ARM = 0x40000028;

export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0,
  TRAP: 0x00030000,
  ERRNO: (e: number) => (0x00050000 | e) >>> 0,
  TRACE: (d: number) => (0x7ff00000 | d) >>> 0,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
};

export interface SeccompData {
  nr: number;
  arch: number;
  /** Up to six 64-bit arguments. */
  args?: bigint[];
}

/** Runs `prog` on `data`; returns the 32-bit seccomp result. Throws on anything the kernel would refuse. */
export function runBpf(prog: Buffer, data: SeccompData): number {
  if (prog.length % 8 !== 0 || prog.length === 0) throw new Error("program is not a sock_filter array");
  const n = prog.length / 8;
  if (n > 4096) throw new Error(`program has ${n} instructions`);
  const mem = Buffer.alloc(64);
  mem.writeUInt32LE(data.nr >>> 0, 0);
  mem.writeUInt32LE(data.arch >>> 0, 4);
  for (const [i, a] of (data.args ?? []).entries()) mem.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i);
  let acc = 0;
  let pc = 0;
  for (let steps = 0; steps <= n; steps++) {
    if (pc < 0 || pc >= n) throw new Error(`pc ${pc} out of the program`);
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: // ld [k]
        if (k % 4 !== 0 || k >= 64) throw new Error(`bad load offset ${k}`);
        acc = mem.readUInt32LE(k);
        break;
      case 0x54: // and #k
        acc = (acc & k) >>> 0;
        break;
      case 0x05: // ja
        pc += k;
        break;
      case 0x15:
        pc += acc === k ? jt : jf;
        break;
      case 0x25:
        pc += acc > k ? jt : jf;
        break;
      case 0x35:
        pc += acc >= k ? jt : jf;
        break;
      case 0x45:
        pc += (acc & k) !== 0 ? jt : jf;
        break;
      case 0x06:
        return k >>> 0;
      default:
        throw new Error(`opcode 0x${code.toString(16)} at ${pc - 1}`);
    }
  }
  throw new Error("program does not terminate");
}

/** Checks statically that every jump lands inside the program and the last instruction returns. */
export function checkBpf(prog: Buffer): void {
  const n = prog.length / 8;
  for (let pc = 0; pc < n; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const targets =
      code === 0x05
        ? [pc + 1 + prog.readUInt32LE(pc * 8 + 4)]
        : (code & 0x07) === 0x05
          ? [pc + 1 + prog.readUInt8(pc * 8 + 2), pc + 1 + prog.readUInt8(pc * 8 + 3)]
          : [];
    for (const t of targets) if (t >= n) throw new Error(`jump at ${pc} to ${t} past the end (${n})`);
  }
  if (prog.readUInt16LE((n - 1) * 8) !== 0x06) throw new Error("last instruction is not a return");
}
