// Base images with hand-made layers: a layer tar written with tar-stream (any mode, device nodes, links) appended to
// an existing docker-archive (busybox:local), so tests can load images tsbuild's own writer never produced.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tar, { type Header } from "tar-stream";
import { exec } from "./tools.js";

export interface TarMember {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  /** Permission bits (0o7777 range). */
  mode: number;
  uid?: number;
  gid?: number;
  content?: string | Buffer;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

// tar-stream replaces a falsy mode by 0644/0755; type bits keep mode 000 non-zero and are masked off when encoded.
const TYPE_BITS: Record<NonNullable<TarMember["type"]>, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  link: 0o100000,
  "character-device": 0o020000,
  "block-device": 0o060000,
  fifo: 0o010000,
};

/** An uncompressed tar of `members`, in the order given. */
export async function layerTar(members: TarMember[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const m of members) {
    const type = m.type ?? "file";
    const body = m.content === undefined ? undefined : Buffer.from(m.content);
    const h: Header = {
      name: m.name,
      type,
      mode: TYPE_BITS[type] | m.mode,
      uid: m.uid ?? 0,
      gid: m.gid ?? 0,
      mtime: new Date(1_000_000_000_000),
      size: body?.length ?? 0,
      ...(m.linkname !== undefined ? { linkname: m.linkname } : {}),
      ...(m.devmajor !== undefined ? { devmajor: m.devmajor, devminor: m.devminor ?? 0 } : {}),
    };
    await new Promise<void>((resolve, reject) => pack.entry(h, body ?? null, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Writes to `out` a docker-archive of the image in `base` plus `layers` on top, tagged `tag` (e.g. "modes:base"). */
export async function extendArchive(base: string, out: string, layers: Buffer[], tag: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "tsbuild-imgarc-"));
  try {
    await exec("tar", ["-xf", base, "-C", work]);
    const [entry] = JSON.parse(await readFile(join(work, "manifest.json"), "utf8")) as { Config: string; Layers: string[] }[];
    if (!entry) throw new Error(`${base} has no image in manifest.json`);
    const config = JSON.parse(await readFile(join(work, entry.Config), "utf8")) as { rootfs: { diff_ids: string[] }; history?: { created_by?: string }[] };
    const names = [...entry.Layers];
    for (const l of layers) {
      const d = sha256(l);
      await writeFile(join(work, `${d}.tar`), l);
      names.push(`${d}.tar`);
      config.rootfs.diff_ids.push(`sha256:${d}`);
      config.history?.push({ created_by: "test layer" });
    }
    const cfgText = JSON.stringify(config);
    const cfgName = `${sha256(cfgText)}.json`;
    await writeFile(join(work, cfgName), cfgText);
    await writeFile(join(work, "manifest.json"), JSON.stringify([{ Config: cfgName, RepoTags: [tag], Layers: names }]));
    await rm(join(work, "repositories"), { force: true });
    await exec("tar", ["-cf", out, "-C", work, "manifest.json", cfgName, ...names]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
