// Fast non-cryptographic hashing for cache keys and file contents (xxhash-wasm). Layer and blob digests stay sha256;
// these hashes only ever name cache entries, so speed matters more than collision resistance against attackers.
import xxhash from "xxhash-wasm";

export interface Hasher {
  /** 128-bit key (two independently seeded xxh64) of a canonical string, as 32 hex digits. */
  key(text: string): string;
  /** 64-bit content hash of bytes, as 16 hex digits. */
  bytes(data: Uint8Array): string;
  /** Incremental 64-bit content hash for streams. */
  stream(): { update(chunk: Uint8Array): void; digest(): string };
}

const SEED_A = 0n;
const SEED_B = 0x9e3779b97f4a7c15n;

function hex64(n: bigint): string {
  return n.toString(16).padStart(16, "0");
}

/** Instantiates the wasm module (about a millisecond); callers keep the Hasher for the whole build. */
export async function createHasher(): Promise<Hasher> {
  const api = await xxhash();
  return {
    key: (text) => hex64(api.h64(text, SEED_A)) + hex64(api.h64(text, SEED_B)),
    bytes: (data) => hex64(api.h64Raw(data, SEED_A)),
    stream() {
      const h = api.create64(SEED_A);
      return {
        update(chunk) {
          h.update(chunk);
        },
        digest: () => hex64(h.digest()),
      };
    },
  };
}
