// "Did you mean …?": the closest candidate to a misspelled word (a command, a flag, a stage name, a template field),
// by Damerau–Levenshtein distance (optimal string alignment: insert, delete, substitute, swap two neighbours).

/** Edit distance between `a` and `b`, counting a swap of two adjacent characters as one edit. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate closest to `word` within 2 edits (case is ignored, so `Build` finds `build`), or undefined when
 * none is that close — or when the edits would replace most of a short word (`x` is 2 edits from `du`, and no
 * one meant that), or when `word` is itself a candidate. Ties go to the earlier candidate, so callers list the likelier ones first.
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.includes(word)) return undefined;
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist > 2 || dist >= Math.max(w.length, 2) || dist >= c.length) continue;
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}
