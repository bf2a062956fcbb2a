// Parsing of the WWW-Authenticate challenge a registry sends with a 401 (RFC 7235): the scheme (Bearer or Basic)
// and its auth-params (realm, service, scope, error), with quoted strings and commas inside quotes handled.

export interface AuthChallenge {
  /** Lower-case scheme: "bearer", "basic", ... */
  scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;

/** All challenges in one header value (a server may offer several, e.g. `Bearer realm=..., Basic realm=...`). */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(s);
    if (!m) return undefined;
    i = TOKEN.lastIndex;
    return m[0];
  };
  const quoted = (): string => {
    // s[i] is the opening quote
    i++;
    let v = "";
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      v += s[i];
      i++;
    }
    i++; // closing quote (or end)
    return v;
  };
  let current: AuthChallenge | undefined;
  while (i < s.length) {
    skipWs();
    if (s[i] === ",") {
      i++;
      continue;
    }
    const start = i;
    const word = token();
    if (word === undefined) {
      i++; // garbage character: skip it rather than loop forever
      continue;
    }
    skipWs();
    if (s[i] === "=") {
      // An auth-param of the current challenge (or token68 padding: "abc==" has no value after '=').
      i++;
      skipWs();
      let value: string;
      if (s[i] === '"') value = quoted();
      else value = token() ?? "";
      if (current) current.params[word.toLowerCase()] = value;
      continue;
    }
    // A new scheme name. (A token68 credential after a scheme is not used by registries; it is skipped.)
    if (start === i) break;
    current = { scheme: word.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}
