// `tsbuild doctor`: checks what a build needs on this machine and prints each check with its fix, as `flutter doctor`
// does; exit 1 when something required is missing. A thin view of api/doctor.ts's runDoctor().
import { UsageError } from "../../errors.js";
import { flagString, parseArgs } from "../args.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { runDoctor, type DoctorReport } from "../../api/doctor.js";

const MARK = { ok: "[ok]", warning: "[warning]", missing: "[missing]" } as const;

/** The human table: one line per check, its fix indented beneath, and a verdict. */
export function formatDoctorReport(r: DoctorReport): string {
  const markWidth = Math.max(...Object.values(MARK).map((m) => m.length)) + 1;
  const titleWidth = Math.max(...r.checks.map((c) => c.title.length)) + 2;
  const lines = [`tsbuild doctor (user ${r.user}, uid ${r.uid})`];
  for (const c of r.checks) {
    lines.push(`${MARK[c.status].padEnd(markWidth)}${c.title.padEnd(titleWidth)}${c.detail}`);
    if (c.fix) lines.push(`${" ".repeat(markWidth + titleWidth)}fix: ${c.fix}`);
  }
  const warnings = r.checks.filter((c) => c.status === "warning").length;
  const missing = r.checks.filter((c) => c.status === "missing").length;
  lines.push(
    "",
    missing > 0
      ? `${missing} required check${missing === 1 ? "" : "s"} missing: a build cannot run here until fixed.`
      : `A build can run here${warnings ? ` (${warnings} warning${warnings === 1 ? "" : "s"}: some features or fallbacks)` : ""}.`,
  );
  return lines.join("\n") + "\n";
}

export const doctorCommand: Command = {
  name: "doctor",
  usage: "tsbuild doctor [--format json]",
  summary: "Check what a build needs on this machine (runtime, user namespaces, overlayfs, cgroups, emulators, store) and print the fixes.",
  flags: [
    { name: "format", type: "string", value: "json", help: "json: one JSON document (ok, uid, user, checks[{id,title,status,detail,fix}])" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "doctor");
    if (args.positionals.length > 0) throw new UsageError("BAD_ARGS", "`tsbuild doctor` takes no arguments");
    const fmt = flagString(args, "format");
    if (fmt !== undefined && fmt !== "json") throw new UsageError("BAD_FLAG_VALUE", `--format takes json, not ${JSON.stringify(fmt)}`);
    const root = flagString(args, "root");
    if (root !== undefined && root.trim() === "") throw new UsageError("BAD_FLAG_VALUE", "--root needs a directory, not an empty string");
    // An unwritable --root is a finding to report, not an error: no storeRootFlag check here.
    const report = await runDoctor({ env: ctx.io.env, ...(root !== undefined ? { storeRoot: root } : {}) });
    ctx.io.stdout.write(fmt === "json" ? JSON.stringify(report) + "\n" : formatDoctorReport(report));
    return report.ok ? 0 : 1;
  },
};
