// The per-URL record of an ADD download (store's cache/http/): the validators the server sent (ETag, Last-Modified)
// and the content digest, so a rebuild asks "changed?" (If-None-Match / If-Modified-Since) instead of downloading.
import { readFile } from "node:fs/promises";
import { isDigest } from "../image/types.js";
import { writeFileAtomic } from "../store/atomic-write.js";
import type { StoreLayout } from "../store/layout.js";

export interface HttpRecord {
  url: string;
  digest: `sha256:${string}`;
  etag?: string;
  lastModified?: string;
}

/** The record of `url` under `urlKey`, or undefined when there is none (or it is unreadable: then it is just a miss). */
export async function readHttpRecord(layout: StoreLayout, urlKey: string, url: string): Promise<HttpRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(layout.httpRecord(urlKey), "utf8")) as Partial<HttpRecord>;
    if (r.url !== url || typeof r.digest !== "string" || !isDigest(r.digest)) return undefined;
    return {
      url,
      digest: r.digest as `sha256:${string}`,
      ...(typeof r.etag === "string" ? { etag: r.etag } : {}),
      ...(typeof r.lastModified === "string" ? { lastModified: r.lastModified } : {}),
    };
  } catch {
    return undefined;
  }
}

export async function writeHttpRecord(layout: StoreLayout, urlKey: string, record: HttpRecord): Promise<void> {
  await writeFileAtomic(layout.httpRecord(urlKey), JSON.stringify(record), { tmpDir: layout.tmpDir });
}
