// Parses COPY/ADD --chmod values: octal (`755`, `4755`) or chmod(1)-style symbolic (`u+x,g-w`, `a+rX`, `+x`).
// Returns a function from the current permission bits to the new ones, applied per copied entry.
import { BuildError } from "../errors.js";

export type ChmodFn = (currentMode: number, isDir: boolean) => number;

const WHO_BITS: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007 };
const CLAUSE = /^([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)$/;
const ACTION = /([-+=])([ugo]|[rwxXst]*)/g;

function badChmod(spec: string, why: string): BuildError {
  return new BuildError("BAD_CHMOD", `invalid --chmod value ${JSON.stringify(spec)}: ${why}`, {
    hint: "use an octal mode like 0755 or a symbolic mode like u+x,g-w",
  });
}

/** The rwx bits of one class (`u`, `g`, `o`) moved down to the `o` position. */
function classBits(mode: number, cls: string): number {
  if (cls === "u") return (mode >> 6) & 7;
  if (cls === "g") return (mode >> 3) & 7;
  return mode & 7;
}

export function parseChmod(spec: string): ChmodFn {
  const s = spec.trim();
  if (s === "") throw badChmod(spec, "empty");
  if (/^[0-7]+$/.test(s)) {
    if (s.length > 4) throw badChmod(spec, "octal modes have at most 4 digits");
    const bits = parseInt(s, 8);
    return () => bits;
  }
  if (/^[0-9]+$/.test(s)) throw badChmod(spec, "not an octal number");

  type Op = { who: number; op: string; perm: string };
  const ops: Op[] = [];
  for (const clause of s.split(",")) {
    const m = CLAUSE.exec(clause);
    if (!m) throw badChmod(spec, `bad clause ${JSON.stringify(clause)}`);
    const whoText = m[1] ?? "";
    // Without a who, chmod(1) applies to all (modulo umask; a build has no umask to honour here).
    const who = whoText === "" || whoText.includes("a") ? 0o7777 : [...whoText].reduce((acc, c) => acc | (WHO_BITS[c] ?? 0), 0);
    for (const a of (m[2] ?? "").matchAll(ACTION)) ops.push({ who, op: a[1] as string, perm: a[2] ?? "" });
  }

  return (currentMode, isDir) => {
    let mode = currentMode & 0o7777;
    for (const { who, op, perm } of ops) {
      let bits = 0;
      if (perm === "u" || perm === "g" || perm === "o") {
        const b = classBits(mode, perm);
        bits = b | (b << 3) | (b << 6);
      } else {
        for (const c of perm) {
          if (c === "r") bits |= 0o444;
          else if (c === "w") bits |= 0o222;
          else if (c === "x") bits |= 0o111;
          // X: execute only for directories or files already executable by someone.
          else if (c === "X" && (isDir || (mode & 0o111) !== 0)) bits |= 0o111;
          else if (c === "s") bits |= 0o6000;
          else if (c === "t") bits |= 0o1000;
        }
      }
      bits &= who;
      if (op === "+") mode |= bits;
      else if (op === "-") mode &= ~bits;
      // `=` resets the class's bits; like GNU chmod it keeps a directory's setuid/setgid.
      else mode = (mode & ~(isDir ? who & 0o1777 : who)) | bits;
    }
    return mode & 0o7777;
  };
}
