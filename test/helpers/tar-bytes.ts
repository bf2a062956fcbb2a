// Small tar archives built in memory for tests (hostile ones too: `..`, absolute names, links out, device nodes),
// and their gzip/bzip2/xz forms made by the real tools.
import { spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import tar, { type Headers } from "tar-stream";
import { writeLayerTar } from "../../src/layer/tar-writer.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { requireTool } from "./tools.js";

export type TarMember = Headers & { body?: string | Buffer };

/** The layer tar writeLayerTar writes for `entries`, in memory. */
export async function layerTarBytes(entries: LayerEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  await writeLayerTar(entries, out);
  return Buffer.concat(chunks);
}

export async function tarBytes(members: TarMember[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const m of members) {
    const { body, ...h } = m;
    await new Promise<void>((resolve, reject) =>
      pack.entry({ mode: h.type === "directory" ? 0o755 : 0o644, mtime: new Date(0), ...h }, body ?? undefined, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function compress(data: Buffer, kind: "none" | "gzip" | "bzip2" | "xz"): Promise<Buffer> {
  if (kind === "none") return data;
  if (kind === "gzip") return gzipSync(data);
  await requireTool(kind);
  const r = spawnSync(kind, ["-c"], { input: data, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${kind} -c failed: ${r.stderr.toString()}`);
  return r.stdout;
}
