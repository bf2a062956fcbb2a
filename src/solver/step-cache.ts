// Step records: the store's own first, then imported caches (--cache-from); a record whose layer is gone is a miss.
import { throwIfAborted } from "../errors.js";
import { MediaType } from "../image/types.js";
import { getStepRecord, putStepRecord, type StepRecord } from "../cache/records.js";
import { ensureBlob } from "../cache/cache-source.js";
import type { BuildSession } from "./build-session.js";

/** A step record usable now: present, undamaged, and its layer still in the store (else it is a miss, never an error). */
export async function findStepRecord(run: BuildSession, key: string): Promise<StepRecord | undefined> {
  const r = await getStepRecord(run.engine.root, key);
  if (r && (!r.layer || (await run.engine.content.has(r.layer.diffId)))) return r;
  for (const source of run.cacheFrom) {
    const imported = source.step(key);
    if (!imported) continue;
    try {
      if (imported.layer)
        await ensureBlob(run.engine.content, source, { mediaType: MediaType.OciLayer, digest: imported.layer.diffId, size: imported.layer.size }, run.signal);
    } catch (e) {
      throwIfAborted(run.signal);
      // A cache that cannot deliver is a miss, never a failed build.
      run.progress.emit({ kind: "warning", message: `cache ${source.name}: cannot use layer ${imported.layer?.diffId}: ${(e as Error).message}` });
      continue;
    }
    await putStepRecord(run.engine.root, imported);
    return imported;
  }
  return undefined;
}
