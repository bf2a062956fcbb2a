// `tsbuild doctor` through the real CLI on this machine: as root (in-process) a build can run, the table names crun and
// --format json parses; as `nobody` (the built binary under setpriv) with newuidmap hidden from PATH and no subuid
// range, both are reported with their fixes.
import { execFile } from "node:child_process";
import { chmod, mkdir, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BIN, tempDir, tsbuild, type CliResult } from "../helpers/cli.js";
import { requireTool } from "../helpers/tools.js";

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  tmp = await tempDir("tsbuild-doctor-cli-");
});
afterAll(async () => {
  await tmp.cleanup();
});

describe("tsbuild doctor as root", () => {
  test("exit 0, a table naming crun, and no leftovers in the store's tmp", async () => {
    await requireTool("crun");
    const root = join(tmp.path, "store");
    const r = await tsbuild(["doctor", "--root", root]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\[ok\]\s+RUN runtime\s+crun \(/m);
    expect(r.stdout).toContain("A build can run here");
    expect(await readdir(join(root, "tmp")).catch(() => [])).toEqual([]);
  });

  test("--format json parses, with a status and detail per check", async () => {
    const r = await tsbuild(["doctor", "--format", "json", "--root", join(tmp.path, "store")]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; uid: number; checks: { id: string; status: string; detail: string }[] };
    expect(report).toMatchObject({ ok: true, uid: 0 });
    expect(report.checks.find((c) => c.id === "runtime")).toMatchObject({ status: "ok", detail: expect.stringContaining("crun") });
    for (const c of report.checks) expect(["ok", "warning", "missing"]).toContain(c.status);
  });

  test("bad arguments are usage errors, and --help lists --format", async () => {
    expect((await tsbuild(["doctor", "--format", "yaml"])).stderr).toContain("--format takes json");
    expect((await tsbuild(["doctor", "extra"])).code).toBe(2);
    expect((await tsbuild(["doctor", "--help"])).stdout).toContain("--format");
    expect((await tsbuild(["--help"])).stdout).toMatch(/^ {2}doctor\s/m);
  });
});

describe("tsbuild doctor as an unprivileged user", () => {
  test("reports newuidmap hidden from PATH and a missing subuid range, each with its fix", async () => {
    await requireTool("setpriv");
    // A PATH with the runtime and what the probes run, but no newuidmap/newgidmap.
    const bin = join(tmp.path, "bin");
    await mkdir(bin);
    const where = async (t: string) => (await promisify(execFile)("sh", ["-c", `command -v ${t}`])).stdout.trim();
    for (const t of ["crun", "slirp4netns", "unshare", "sh", "mount", "umount"]) {
      await requireTool(t);
      await symlink(await where(t), join(bin, t));
    }
    const setpriv = await where("setpriv");
    const home = join(tmp.path, "home");
    await mkdir(home);
    await chmod(home, 0o777);
    await chmod(tmp.path, 0o755);
    const r = await new Promise<CliResult>((resolve) => {
      execFile(
        setpriv,
        ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, BIN, "doctor", "--format", "json", "--root", join(home, "store")],
        { env: { PATH: bin, HOME: home } },
        (err, stdout, stderr) =>
          resolve({
            code: err ? Number((err as { code?: unknown }).code) : 0,
            stdout,
            stderr: err && typeof (err as { code?: unknown }).code !== "number" ? String(err) : stderr,
          }),
      );
    });
    expect(r.stderr).toBe("");
    const report = JSON.parse(r.stdout) as { ok: boolean; uid: number; checks: { id: string; status: string; fix?: string }[] };
    expect(report.uid).toBe(65534);
    const by = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(by["idmap"]).toMatchObject({ status: "warning", fix: "apt-get install -y uidmap" });
    expect(by["subids"]).toMatchObject({ status: "warning", fix: expect.stringContaining("usermod --add-subuids") });
    expect(by["runtime"]).toMatchObject({ status: "ok" });
    // Neither is required (a single-id mapping still builds), so the verdict rests on the rest of this machine.
    expect(r.code).toBe(report.ok ? 0 : 1);
  });
});
