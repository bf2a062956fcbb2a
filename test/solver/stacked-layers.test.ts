// A big COPY from the context on a stage that is an overlay: its layer is written from the context files, then
// mounted as a kept layer dir under the next RUN instead of unpacked into the build's upper dir. The RUN must see
// exactly what an unpacked copy gives (same image as the copy snapshotter, which never stacks), and an early change
// that makes the same layer again must mount the kept dir, not unpack a second one; a late change keeps only what
// differs, as a delta against the layer the step made before (or that one's own base).
import { createHash } from "node:crypto";
import { chmod, link, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { tempDir, tsbuild } from "../helpers/cli.js";

let dir: { path: string; cleanup(): Promise<void> };
let project: string;
const env = { ...process.env, SOURCE_DATE_EPOCH: "0" };

beforeAll(async () => {
  dir = await tempDir("tsbuild-stacked-");
  project = join(dir.path, "proj");
  await mkdir(join(project, "big/sub"), { recursive: true });
  for (let i = 0; i < 40; i++) await writeFile(join(project, `big/${i % 2 ? "sub/" : ""}f${i}.bin`), Buffer.alloc(40_000, i));
  await chmod(join(project, "big/f0.bin"), 0o700);
  await chmod(join(project, "big/sub"), 0o750);
  await symlink("sub/f1.bin", join(project, "big/link"));
  await link(join(project, "big/f2.bin"), join(project, "big/f2-hard.bin"));
  await writeFile(join(project, "deps.txt"), "v1\n");
  await writeFile(
    join(project, "Dockerfile"),
    [
      "FROM busybox:local",
      "WORKDIR /srv",
      "COPY deps.txt ./",
      "RUN cat deps.txt > deps.lock",
      "COPY --chown=7:8 big/ ./big/",
      "RUN find big | sort | xargs ls -lnd > /listing && md5sum big/f0.bin big/sub/f1.bin > /sums && rm big/f4.bin",
      'CMD ["cat", "/listing"]',
      "",
    ].join("\n"),
  );
}, 60_000);
afterAll(async () => {
  await dir?.cleanup();
});

/** The kept directories in the store's snapshots/ that hold the COPY's layer alone (srv/big without the base). */
async function bigLayerDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(join(root, "snapshots")).catch(() => [])) {
    const d = join(root, "snapshots", name);
    const has = async (p: string) => (await stat(join(d, p)).catch(() => undefined)) !== undefined;
    if ((await has("srv/big/f0.bin")) && !(await has("bin/busybox"))) out.push(name);
  }
  return out;
}

async function build(root: string, ...extra: string[]): Promise<string> {
  const r = await tsbuild(["build", "-q", "--root", root, ...extra, project], { env });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe("a big COPY stacked as a kept layer dir", () => {
  it("gives the copy snapshotter's image, and an early change mounts the same kept dir again", async () => {
    const root = await storeWithBusybox(join(dir.path, "store"));
    const plain = await storeWithBusybox(join(dir.path, "plain"));
    const out = join(dir.path, "out");
    const first = await build(root, "--output", `type=local,dest=${out}`);
    expect(first).toBe(await build(plain, "--snapshotter", "copy"));
    // What the RUN saw: owners from --chown, modes, the link, the hard link, and it could delete a copied file.
    const listing = await readFile(join(out, "listing"), "utf8");
    expect(listing).toMatch(/^-rwx------ +1 7 +8 +40000 .* big\/f0\.bin$/m);
    expect(listing).toMatch(/^drwxr-x--- +2 7 +8 .* big\/sub$/m);
    expect(listing).toMatch(/^lrwxrwxrwx .* big\/link -> sub\/f1\.bin$/m);
    expect(listing).toMatch(/^-rw-r--r-- +2 7 +8 +40000 .* big\/f2-hard\.bin$/m);
    expect(await stat(join(out, "srv/big/f4.bin")).catch(() => undefined)).toBeUndefined();
    expect(await bigLayerDirs(root)).toHaveLength(1);

    await writeFile(join(project, "deps.txt"), "v2\n");
    const second = await build(root);
    expect(second).not.toBe(first);
    expect(second).toBe(await build(plain, "--snapshotter", "copy"));
    expect(await bigLayerDirs(root)).toHaveLength(1);

    expect((await readFile("/proc/self/mountinfo", "utf8")).includes(dir.path)).toBe(false);
  }, 120_000);

  it("keeps a late change's layer as a delta against the layer unpacked whole before, and unpacks it whole after a deletion", async () => {
    const late = join(dir.path, "late");
    await mkdir(join(late, "big/sub"), { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(join(late, `big/${i % 2 ? "sub/" : ""}f${i}.bin`), Buffer.alloc(40_000, i));
    await writeFile(
      join(late, "Dockerfile"),
      "FROM busybox:local\nCOPY big/ /big/\nRUN md5sum /big/f0.bin /big/sub/f1.bin > /sums && ls /big | wc -l >> /sums\n",
    );
    const root = await storeWithBusybox(join(dir.path, "late-store"));
    const plain = await storeWithBusybox(join(dir.path, "late-plain"));
    const same = async (out: string) => {
      const r = await tsbuild(["build", "-q", "--root", root, "--output", `type=local,dest=${out}`, late], { env });
      expect(r.code, r.stderr).toBe(0);
      const p = await tsbuild(["build", "-q", "--root", plain, "--snapshotter", "copy", late], { env });
      expect(r.stdout.trim()).toBe(p.stdout.trim());
      return readFile(join(out, "sums"), "utf8");
    };
    const deltas = async () => {
      const out: string[] = [];
      for (const name of await readdir(join(root, "snapshots"))) if (await stat(join(root, "snapshots", name, "base")).catch(() => undefined)) out.push(name);
      return out;
    };
    await same(join(dir.path, "late-0"));
    expect(await deltas()).toEqual([]);
    for (const [round, fill] of [
      [1, 99],
      [2, 98],
    ]) {
      await writeFile(join(late, "big/f0.bin"), Buffer.alloc(40_000, fill));
      const sums = await same(join(dir.path, `late-${round}`));
      expect(sums).toContain(`${createHash("md5").update(Buffer.alloc(40_000, fill)).digest("hex")}  /big/f0.bin`);
      const now = await deltas();
      expect(now).toHaveLength(round as number);
    }
    // Each delta holds only what differs, with its parent directories.
    for (const name of await deltas()) expect(await readdir(join(root, "snapshots", name, "fs/big"))).toEqual(["f0.bin"]);
    // A deleted file would need a whiteout: that layer is unpacked whole, not as a delta.
    await rm(join(late, "big/f10.bin"));
    expect(await same(join(dir.path, "late-3"))).toMatch(/^20$/m);
    expect(await deltas()).toHaveLength(2);
    expect((await readFile("/proc/self/mountinfo", "utf8")).includes(dir.path)).toBe(false);
  }, 120_000);
});
