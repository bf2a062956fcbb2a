// A stage's last step, a COPY from the context, writes its layer without writing the stage's rootfs: whatever reads
// that rootfs afterwards (another stage's COPY --from, a local output) must still see the copied files, and a
// rebuild must give the same image.
import { lstat, mkdir, readFile, readlink, writeFile, symlink, chmod } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let project: string;

beforeAll(async () => {
  dir = await tempDir("tsbuild-deferred-");
  project = join(dir.path, "proj");
  await mkdir(join(project, "tree/sub"), { recursive: true });
  await writeFile(join(project, "tree/a.txt"), "a\n");
  await writeFile(join(project, "tree/sub/run.sh"), "#!/bin/sh\n");
  await chmod(join(project, "tree/sub/run.sh"), 0o750);
  await symlink("sub/run.sh", join(project, "tree/link"));
  await writeFile(join(project, "Dockerfile"), "FROM scratch AS a\nCOPY tree/ /t/\n\nFROM scratch\nCOPY --from=a /t/ /copied/\nCOPY tree/a.txt /last.txt\n");
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("a deferred last COPY", () => {
  it("is in the stage's rootfs for a later COPY --from and in a local output, and rebuilds to the same image", async () => {
    const root = join(dir.path, "store");
    const out = join(dir.path, "out");
    const first = await tsbuild(["build", "-q", "--root", root, "--output", `type=local,dest=${out}`, project], {
      env: { ...process.env, SOURCE_DATE_EPOCH: "0" },
    });
    expect(first.code, first.stderr).toBe(0);
    expect(await readFile(join(out, "copied/a.txt"), "utf8")).toBe("a\n");
    expect((await lstat(join(out, "copied/sub/run.sh"))).mode & 0o7777).toBe(0o750);
    expect(await readlink(join(out, "copied/link"))).toBe("sub/run.sh");
    expect(await readFile(join(out, "last.txt"), "utf8")).toBe("a\n");

    const a = await tsbuild(["build", "-q", "--root", join(dir.path, "store2"), "--no-cache", project], { env: { ...process.env, SOURCE_DATE_EPOCH: "0" } });
    const b = await tsbuild(["build", "-q", "--root", join(dir.path, "store3"), "--no-cache", project], { env: { ...process.env, SOURCE_DATE_EPOCH: "0" } });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout.trim()).toMatch(/^sha256:/);
    expect(b.stdout.trim()).toBe(a.stdout.trim());
  });
});
