// Where a stored layer came from: for each diff_id, the compressed blobs (registry, repository, digest) it was
// pulled as or pushed as. Push uses it to skip, or cross-repository mount, blobs a registry already holds instead
// of uploading a freshly compressed copy. Kept under <root>/distribution/<diff_id hex>.json; it is only a hint.
import { readFile } from "node:fs/promises";
import { isDigest, type Digest } from "../image/types.js";
import { writeFileAtomic } from "../store/atomic-write.js";
import { storeLayout } from "../store/layout.js";

export interface LayerSource {
  registry: string;
  repository: string;
  digest: Digest;
  size: number;
  mediaType: string;
}

/** Older entries beyond this many are dropped (Docker keeps a similar bounded list per layer). */
const MAX_SOURCES = 32;

function valid(s: unknown): s is LayerSource {
  const x = s as Partial<LayerSource> | null;
  return (
    typeof x === "object" &&
    x !== null &&
    typeof x.registry === "string" &&
    typeof x.repository === "string" &&
    typeof x.digest === "string" &&
    isDigest(x.digest) &&
    typeof x.size === "number" &&
    typeof x.mediaType === "string"
  );
}

export async function readLayerSources(root: string, diffId: Digest): Promise<LayerSource[]> {
  try {
    const v = JSON.parse(await readFile(storeLayout(root).layerSources(diffId), "utf8")) as unknown;
    return Array.isArray(v) ? v.filter(valid) : [];
  } catch {
    return []; // missing or unreadable: no hint
  }
}

/** Remember `src` for `diffId`, newest first, without duplicates. */
export async function recordLayerSource(root: string, diffId: Digest, src: LayerSource): Promise<void> {
  const old = await readLayerSources(root, diffId);
  const same = (a: LayerSource) => a.registry === src.registry && a.repository === src.repository && a.digest === src.digest;
  if (old[0] && same(old[0])) return;
  const next = [src, ...old.filter((a) => !same(a))].slice(0, MAX_SOURCES);
  const layout = storeLayout(root);
  await writeFileAtomic(layout.layerSources(diffId), JSON.stringify(next) + "\n", { tmpDir: layout.tmpDir });
}
