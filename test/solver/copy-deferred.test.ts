// deferredCopy plans a context COPY against the rootfs without writing into it; its layer reads the context files
// and checks them. The layer must be byte for byte the one applyCopy's written copy gives, the rootfs untouched, and
// a context file changed after the key was computed must fail the layer with CONTEXT_CHANGED.
import { chmod, chown, cp, link, mkdir, rm, symlink, unlink, utimes, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openBuildContext } from "../../src/context/build-context.js";
import { openFileHashCache } from "../../src/context/file-hash-cache.js";
import { digestContextSources } from "../../src/context/source-digest.js";
import { layerTarBytes } from "../helpers/tar-bytes.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { applyCopy, deferredCopy, type CopyOptions } from "../../src/solver/copy.js";
import { createHasher } from "../../src/util/hasher.js";
import { diskView, tempDir, tree } from "./copy-helpers.js";

const fixtureEtc = fileURLToPath(new URL("../../fixtures/copy/etc", import.meta.url));
const EPOCH = 1_700_000_000;

let base: string;
let ctxDir: string;

/** A rootfs with existing dirs (one setgid, one with an old mtime), a file to replace, symlinked dirs. */
async function makeRootfs(name: string): Promise<string> {
  const rootfs = path.join(base, name);
  await tree(rootfs, { "etc/": "", "srv/app/old.txt": "old", "srv/app/keep/": "", "shared/": "", "usr/lib/": "" });
  await cp(fixtureEtc, path.join(rootfs, "etc"), { recursive: true });
  await chmod(path.join(rootfs, "shared"), 0o2775);
  await chown(path.join(rootfs, "shared"), 0, 50);
  await utimes(path.join(rootfs, "srv/app"), 1000, 1000);
  await symlink("usr/lib", path.join(rootfs, "lib"));
  return rootfs;
}

async function keyed(sources: string[], select?: CopyOptions["select"]) {
  const hasher = await createHasher();
  const context = openBuildContext(ctxDir, ["**/*.secret"]);
  const cache = await openFileHashCache(path.join(base, "hash-cache"), ctxDir, hasher);
  const { ledger } = await digestContextSources(context, sources, cache, hasher, select ? { select } : {});
  return { kind: "context" as const, context, keyed: ledger };
}

beforeEach(async () => {
  base = await tempDir("copy-deferred-");
  ctxDir = path.join(base, "ctx");
  await tree(ctxDir, {
    "app/index.js": "index",
    "app/old.txt": "new content",
    "app/lib/util.js": "util".repeat(1000),
    "app/big.bin": "",
    "app/x.secret": "ignored",
    "app/empty/": "",
    "single.txt": "one",
  });
  await writeFile(path.join(ctxDir, "app/big.bin"), Buffer.alloc((1 << 20) + 12345, 7));
  await chmod(path.join(ctxDir, "app/index.js"), 0o4755);
  await chmod(path.join(ctxDir, "app/lib"), 0o700);
  await chown(path.join(ctxDir, "app/index.js"), 1234, 5678);
  await symlink("index.js", path.join(ctxDir, "app/link-index"));
  await link(path.join(ctxDir, "app/lib/util.js"), path.join(ctxDir, "app/a-hardlink.js"));
  await utimes(path.join(ctxDir, "app/index.js"), 1_800_000_000, 1_800_000_000);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("deferredCopy", () => {
  const cases: { name: string; sources: string[]; dest: string; extra?: Partial<CopyOptions> }[] = [
    { name: "a tree over an existing directory (a file replaced, dir metadata kept)", sources: ["app"], dest: "/srv/app/" },
    { name: "a tree into a new directory, --chown and --chmod", sources: ["app"], dest: "/new/dir/", extra: { chown: "app:staff", chmod: "u=rwX,go=rX" } },
    { name: "a tree through a symlinked directory, mtimes clamped", sources: ["app/"], dest: "/lib/app", extra: { clampMtime: true } },
    { name: "a tree into a setgid directory", sources: ["app"], dest: "/shared/" },
    { name: "one file", sources: ["single.txt"], dest: "/srv/app/renamed.txt" },
    { name: "--exclude and --parents", sources: ["app"], dest: "/p/", extra: { select: { exclude: ["**/*.bin"], parents: true } } },
  ];
  for (const c of cases) {
    it(`writes the layer applyCopy writes, leaving the rootfs as it was: ${c.name}`, async () => {
      const written = await makeRootfs("written");
      const planned = await makeRootfs("planned");
      const before = await diskView(planned);
      const opts = (rootfs: string, from: CopyOptions["from"]): CopyOptions => ({
        rootfs,
        sources: c.sources,
        dest: c.dest,
        workdir: "/",
        from,
        isAdd: false,
        epoch: EPOCH,
        ...c.extra,
      });
      const select = c.extra?.select;
      const viaDisk = await applyCopy(opts(written, await keyed(c.sources, select)));
      const viaContext = await deferredCopy(opts(planned, await keyed(c.sources, select)));
      expect(viaContext).toBeDefined();
      expect(await diskView(planned)).toEqual(before);
      const want = await layerTarBytes(viaDisk);
      const got = await layerTarBytes(viaContext as LayerEntry[]);
      expect(got.equals(want)).toBe(true);
      // The same tar lists the same entries (a readable failure first, if the bytes differ).
      expect((viaContext as LayerEntry[]).map((e) => `${e.path} ${e.type} ${e.mode}`)).toEqual(viaDisk.map((e) => `${e.path} ${e.type} ${e.mode}`));
    });
  }

  it("refuses a directory where a file goes, as applyCopy does", async () => {
    const rootfs = await makeRootfs("dir-in-way");
    await mkdir(path.join(rootfs, "srv/app/index.js"));
    await expect(
      deferredCopy({ rootfs, sources: ["app"], dest: "/srv/app/", workdir: "/", from: await keyed(["app"]), isAdd: false, epoch: EPOCH }),
    ).rejects.toMatchObject({
      code: "DEST_IS_DIR",
    });
  });

  it("declines (doing nothing) what the rootfs alone does not decide: several sources, ADD, heredocs, unkeyed copies", async () => {
    const rootfs = await makeRootfs("declined");
    const before = await diskView(rootfs);
    const common = { rootfs, dest: "/d/", workdir: "/", isAdd: false, epoch: EPOCH };
    expect(await deferredCopy({ ...common, sources: ["app", "single.txt"], from: await keyed(["app", "single.txt"]) })).toBeUndefined();
    expect(await deferredCopy({ ...common, sources: ["app/*.js"], from: await keyed(["app/*.js"]) })).toBeUndefined();
    expect(await deferredCopy({ ...common, sources: ["app"], isAdd: true, from: await keyed(["app"]) })).toBeUndefined();
    expect(await deferredCopy({ ...common, sources: ["app"], heredocs: [{ name: "h", content: "x" }], from: await keyed(["app"]) })).toBeUndefined();
    expect(await deferredCopy({ ...common, sources: ["app"], from: { kind: "context", context: openBuildContext(ctxDir, []) } })).toBeUndefined();
    expect(await diskView(rootfs)).toEqual(before);
  });

  for (const [what, change] of [
    ["rewritten with other bytes of the same size", (f: string) => writeFile(f, "INDEX")],
    ["grown", (f: string) => writeFile(f, "index and more")],
    ["deleted", (f: string) => unlink(f)],
    ["replaced by a symlink", async (f: string) => (await unlink(f), await symlink("lib/util.js", f))],
    ["replaced by a FIFO", async (f: string) => (await unlink(f), execFileSync("mkfifo", [f]))],
  ] as const) {
    it(`fails the layer with CONTEXT_CHANGED when a small file is ${what} after the key was computed`, async () => {
      const rootfs = await makeRootfs("changed");
      const entries = await deferredCopy({ rootfs, sources: ["app"], dest: "/srv/app/", workdir: "/", from: await keyed(["app"]), isAdd: false, epoch: EPOCH });
      await change(path.join(ctxDir, "app/index.js"));
      await expect(layerTarBytes(entries as LayerEntry[])).rejects.toMatchObject({
        code: "CONTEXT_CHANGED",
        message: expect.stringContaining('"app/index.js"'),
      });
    });
  }

  it("fails the layer with CONTEXT_CHANGED when a large file changes after the key was computed", async () => {
    const rootfs = await makeRootfs("changed-big");
    const entries = await deferredCopy({ rootfs, sources: ["app"], dest: "/srv/app/", workdir: "/", from: await keyed(["app"]), isAdd: false, epoch: EPOCH });
    await writeFile(path.join(ctxDir, "app/big.bin"), Buffer.alloc((1 << 20) + 12345, 8));
    await expect(layerTarBytes(entries as LayerEntry[])).rejects.toMatchObject({ code: "CONTEXT_CHANGED", message: expect.stringContaining('"app/big.bin"') });
  });
});
