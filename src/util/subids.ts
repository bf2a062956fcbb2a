// /etc/subuid and /etc/subgid: the subordinate id ranges a user may map into a user namespace (through newuidmap).
export interface IdRange {
  start: number;
  count: number;
}

/** The ranges `user` (by name or uid) holds in a subuid/subgid file's text, in file order. */
export function subordinateRanges(text: string, user: string, uid: number): IdRange[] {
  const out: IdRange[] = [];
  for (const line of text.split("\n")) {
    const [who, start, count] = line.trim().split(":");
    if ((who === user || who === String(uid)) && /^\d+$/.test(start ?? "") && /^\d+$/.test(count ?? "") && Number(count) > 0)
      out.push({ start: Number(start), count: Number(count) });
  }
  return out;
}
