// Splits an instruction's arguments on blanks outside quotes, keeping quotes and escapes as written (BuildKit's
// parseWords); unquoting happens later, in variable expansion.

export function splitWords(rest: string, escape = "\\"): string[] {
  const words: string[] = [];
  let word = "";
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i] as string;
    if (quote === undefined && (c === " " || c === "\t")) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === escape && quote !== "'" && i + 1 < rest.length) {
      word += c + (rest[i + 1] as string);
      i++;
      continue;
    }
    if (quote === undefined && (c === '"' || c === "'")) quote = c;
    else if (c === quote) quote = undefined;
    word += c;
  }
  if (inWord) words.push(word);
  return words;
}
