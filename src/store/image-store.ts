// The image (tag) store: one JSON file per image name under refs/, each replaced atomically, so concurrent
// tagging from several processes never leaves a torn file (last writer wins). Names are stored as given:
// callers normalise references (docker.io/library/x:latest) before calling.
import { readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { isDigest, type Descriptor } from "../image/types.js";
import { StoreError } from "../errors.js";
import { writeFileAtomic } from "./atomic-write.js";
import { storeLayout } from "./layout.js";
import type { ImageRecord, ImageStore } from "./types.js";

export interface ImageStoreOptions {
  /** Called for each ref file that list() skips because it is unreadable or malformed (default: ignored silently). */
  onWarning?(message: string): void;
}

function isRecord(v: unknown): v is ImageRecord {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Partial<ImageRecord>;
  const t = r.target as Partial<Descriptor> | undefined;
  return (
    typeof r.name === "string" &&
    typeof r.updated === "string" &&
    typeof t === "object" &&
    t !== null &&
    typeof t.mediaType === "string" &&
    typeof t.digest === "string" &&
    isDigest(t.digest) &&
    typeof t.size === "number"
  );
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

export function openImageStore(root: string, opts: ImageStoreOptions = {}): ImageStore {
  const layout = storeLayout(root);
  const { refsDir, tmpDir } = layout;
  const file = (name: string) => layout.ref(name);

  /** Parse one ref file; undefined when missing. Malformed content → StoreError REF_CORRUPT. */
  async function load(path: string): Promise<ImageRecord | undefined> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new StoreError("REF_CORRUPT", `image ref file ${path} is not valid JSON`, { cause: e });
    }
    if (!isRecord(v)) throw new StoreError("REF_CORRUPT", `image ref file ${path} is not an image record`);
    return v;
  }

  return {
    async get(name) {
      let r: ImageRecord | undefined;
      try {
        r = await load(file(name));
      } catch (e) {
        // A corrupt ref behaves as absent for lookups; list() reports it through onWarning.
        if (e instanceof StoreError) {
          opts.onWarning?.(e.message);
          return undefined;
        }
        throw e;
      }
      // Hash-named files could in theory collide; the stored name is authoritative.
      return r && r.name === name ? r : undefined;
    },
    async set(name, target) {
      const desc: Descriptor = { mediaType: target.mediaType, digest: target.digest, size: target.size };
      if (target.annotations) desc.annotations = target.annotations;
      if (target.platform) desc.platform = target.platform;
      const record: ImageRecord = { name, target: desc, updated: new Date().toISOString() };
      // docker moves LastTagTime on every tag, a no-op rebuild's too: still written, but when the name already names
      // this target a crash that loses the rename loses only the time, so the directory is not synced for it.
      const before = await load(file(name)).catch(() => undefined);
      const same = before !== undefined && JSON.stringify(before.target) === JSON.stringify(desc);
      await writeFileAtomic(file(name), JSON.stringify(record, null, 2) + "\n", { tmpDir, syncDir: !same });
      return record;
    },
    async delete(name) {
      // A corrupt ref file is removed too: deleting the name is what the caller asked for.
      try {
        await unlink(file(name));
        return true;
      } catch (e) {
        if (isNotFound(e)) return false;
        throw e;
      }
    },
    async list() {
      let names: string[];
      try {
        names = await readdir(refsDir);
      } catch (e) {
        if (isNotFound(e)) return [];
        throw e;
      }
      const out: ImageRecord[] = [];
      for (const n of names) {
        // Dot files are temp files of in-flight atomic writes.
        if (n.startsWith(".") || !n.endsWith(".json")) continue;
        try {
          const r = await load(join(refsDir, n));
          if (r) out.push(r);
        } catch (e) {
          if (!(e instanceof StoreError)) throw e;
          opts.onWarning?.(e.message);
        }
      }
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
  };
}
