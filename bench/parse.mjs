// Parse benchmark: a generated 10,000-line Dockerfile through parseDockerfile; reports lines/s beside the
// machine's raw limit for the same text (splitting it into lines), measured in the same run. Needs `npm run build`.
import { parseDockerfile } from "../dist/frontend/parse.js";

export function generateDockerfile(lines) {
  const out = ["# syntax=docker/dockerfile:1", "ARG BASE=busybox:local", "FROM ${BASE} AS build"];
  const kinds = [
    (i) => `ENV VAR_${i}="value ${i}" OTHER_${i}=x`,
    (i) => `RUN echo step ${i} && \\\n    echo continued ${i}`,
    (i) => `COPY --chown=app:app src/file${i}.txt /app/file${i}.txt`,
    (i) => `LABEL key${i}="v${i}"`,
    (i) => `RUN ["/bin/sh", "-c", "echo exec ${i}"]`,
    (i) => `# a comment ${i}`,
    (i) => `WORKDIR /app/dir${i}`,
    (i) => `RUN <<EOF\necho heredoc ${i}\nEOF`,
  ];
  let n = out.length;
  for (let i = 0; n < lines; i++) {
    const l = kinds[i % kinds.length](i);
    out.push(l);
    n += l.split("\n").length;
  }
  return out.join("\n") + "\n";
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function benchParse({ lines = 10_000, runs = 7 } = {}) {
  const text = generateDockerfile(lines);
  const count = text.split("\n").length - 1;
  parseDockerfile(text); // warm-up (JIT, grammar compile)
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    parseDockerfile(text);
    times.push(performance.now() - t0);
  }
  const raw = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    text.split("\n").map((l) => l.trim());
    raw.push(performance.now() - t0);
  }
  const ms = median(times);
  return { lines: count, medianMs: ms, linesPerSecond: Math.round((count / ms) * 1000), rawSplitMs: median(raw) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = benchParse();
  console.log(
    `parse: ${r.lines} lines in ${r.medianMs.toFixed(1)} ms (median of 7) = ${r.linesPerSecond.toLocaleString("en")} lines/s; raw line split of the same text: ${r.rawSplitMs.toFixed(2)} ms`,
  );
}
