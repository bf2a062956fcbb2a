// The errno code of a Node error ("ENOENT", "EXDEV", "ECONNREFUSED"): the one way tsbuild asks "which system error
// was this", instead of casting to NodeJS.ErrnoException at each call site.

/** The errno code of a Node fs/net/child_process error, or undefined for anything else (ERR_* codes included). */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | null | undefined)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}
