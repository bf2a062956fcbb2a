// The per-layer listing of the parity corpus (fixtures/parity/*/layers.txt), shared by the recorder (from a
// `docker save` of BuildKit's image) and test/parity.test.ts (from a `tsbuild save`), so both sides print the same
// way: one block per layer added above the base, one line per tar member in tar order:
//   TYPE MODE UID:GID SIZE PATH[ -> LINK]
// TYPE f d l h c b p, MODE the permission bits (set-id and sticky included, no type bits: Docker 20.10's own
// layer store writes them, current BuildKit does not), SIZE of regular files (0 otherwise). Times are left out: they
// are the build's.
import { createReadStream, readFileSync } from "node:fs";
import { join } from "node:path";
import tar from "tar-stream";

const TYPES = { file: "f", directory: "d", symlink: "l", link: "h", "character-device": "c", "block-device": "b", fifo: "p" };
const clean = (p) => p.replace(/^\.\//, "").replace(/\/+$/, "");

/** The lines of one uncompressed layer tar. */
export async function layerLines(file) {
  const ex = tar.extract();
  const lines = [];
  const done = new Promise((resolve, reject) => {
    ex.on("entry", (h, stream, next) => {
      const link = h.linkname ? ` -> ${clean(h.linkname)}` : "";
      const mode = (h.mode & 0o7777).toString(8).padStart(4, "0");
      lines.push(`${TYPES[h.type] ?? h.type} ${mode} ${h.uid}:${h.gid} ${h.type === "file" ? h.size : 0} ${clean(h.name)}${link}`);
      stream.on("end", next);
      stream.resume();
    });
    ex.on("finish", resolve);
    ex.on("error", reject);
  });
  createReadStream(file).pipe(ex);
  await done;
  return lines;
}

/** The listing of the layers of an unpacked docker-archive (`dir`) above the first `skip` ones. */
export async function archiveListing(dir, skip) {
  const [manifest] = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const out = [];
  for (const [i, layer] of manifest.Layers.slice(skip).entries()) {
    out.push(`== layer ${i + 1}`);
    out.push(...(await layerLines(join(dir, layer))));
  }
  return out;
}

/** The layer tar paths of an unpacked docker-archive, in order. */
export function archiveLayers(dir) {
  return JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"))[0].Layers;
}
