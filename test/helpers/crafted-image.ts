// A docker-archive whose image config a test writes by hand (any JSON, also ill-typed fields), with one tiny layer,
// so `load -i` + `FROM` exercise what a real base image could carry.
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import tar from "tar-stream";

export interface TarMember {
  name: string;
  data?: Buffer | string;
  type?: "file" | "directory";
}

export async function makeTar(members: TarMember[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const m of members) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      const type = m.type ?? "file";
      const h = { name: m.name, type, mode: type === "directory" ? 0o755 : 0o644, mtime: new Date(0) };
      if (type === "file") pack.entry(h, Buffer.from(m.data ?? ""), cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/**
 * Writes DIR/FILE: a docker-archive of one image named `tag` whose config's `config` object is `runConfig` verbatim
 * (the rest of the config — rootfs, os, architecture — is valid unless `top` overrides it).
 */
export async function craftImageArchive(dir: string, file: string, tag: string, runConfig: unknown, top: Record<string, unknown> = {}): Promise<string> {
  const layer = await makeTar([
    { name: "etc/", type: "directory" },
    { name: "etc/hello", data: "hi\n" },
  ]);
  const config = JSON.stringify({ architecture: "amd64", os: "linux", config: runConfig, rootfs: { type: "layers", diff_ids: [sha256(layer)] }, ...top });
  const cfgName = `${sha256(config).slice(7)}.json`;
  const archive = await makeTar([
    { name: "layer.tar", data: layer },
    { name: cfgName, data: config },
    { name: "manifest.json", data: JSON.stringify([{ Config: cfgName, RepoTags: [tag], Layers: ["layer.tar"] }]) },
  ]);
  const out = join(dir, file);
  await writeFile(out, archive);
  return out;
}
