// Exec-form detection: a JSON array of strings, or undefined (then BuildKit falls back to shell form).

export function tryJsonArrayOf(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith("[")) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  } catch {
    /* not JSON */
  }
  return undefined;
}

/** A JSON array with some element that is not a string: BuildKit's parser rejects it rather than fall back. */
export function isJsonArrayOfNonStrings(text: string): boolean {
  const t = text.trim();
  if (!t.startsWith("[")) return false;
  try {
    const v: unknown = JSON.parse(t);
    return Array.isArray(v) && v.some((x) => typeof x !== "string");
  } catch {
    return false;
  }
}
