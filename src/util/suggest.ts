// "Did you mean ...?": the candidate closest to a misspelled word (a stage, a command, a flag), by
// Damerau-Levenshtein distance (optimal string alignment: a swap of two neighbours counts as one edit). Pure.

/** Most edits a suggestion may be away from the word; further off, a guess confuses more than it helps. */
const MAX_DISTANCE = 2;

/** Edits (insert, delete, substitute, swap adjacent) between a and b. */
function distance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    const prev = rows[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = d;
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The candidate closest to `word` (compared case-insensitively) if it is at most 2 edits away; on a tie the first in
 * `candidates`' order; undefined when none is that close. An exact match (ignoring case) is its own suggestion.
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = MAX_DISTANCE + 1;
  for (const c of candidates) {
    // Strings whose lengths differ by more than the limit cannot be within it.
    if (Math.abs(c.length - w.length) > MAX_DISTANCE) continue;
    const d = distance(w, c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best;
}
