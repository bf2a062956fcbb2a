// The benchmark's fixture projects, generated deterministically (seeded PRNG) into a directory, with the changes
// each scenario makes and a model of which steps each change must invalidate (the expectation every build is checked against).
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { prng } from "./lib/measure.mjs";

/** Instructions that produce a filesystem step in every builder (BuildKit, buildah and tsbuild all report them). */
export const LAYER_KINDS = new Set(["RUN", "COPY", "ADD", "WORKDIR"]);

// Text-like bytes (compress about 3-4x, like source code), generated once per process from a fixed seed.
function textPool(bytes, seed) {
  const words = [
    "const",
    "return",
    "function",
    "import",
    "export",
    "if",
    "else",
    "value",
    "name",
    "path",
    "=>",
    "{",
    "}",
    ";",
    "await",
    "index",
    "buffer",
    "layer",
    "stage",
    "cache",
  ];
  const next = prng(seed);
  const parts = [];
  let n = 0;
  while (n < bytes) {
    const w = words[Math.floor(next() * words.length)] + (next() < 0.12 ? `${Math.floor(next() * 1000)}\n` : " ");
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join("")).subarray(0, bytes);
}

const POOL = textPool(1 << 20, 7);

/** Deterministic text content of `size` bytes for a file; the header line makes every file distinct. */
export function textContent(path, size, next) {
  const head = Buffer.from(`// ${path}\n`);
  if (size <= head.length) return head.subarray(0, size);
  const body = Buffer.alloc(size - head.length);
  let o = 0;
  while (o < body.length) {
    const start = Math.floor(next() * (POOL.length - 1));
    o += POOL.copy(body, o, start, Math.min(POOL.length, start + body.length - o));
  }
  return Buffer.concat([head, body]);
}

function write(dir, rel, content) {
  const p = join(dir, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
}

/** The 5,000-file tree: nested directories (tree/dNN/eNN/fNNNN.txt) with a mixed size distribution, about 25 MB. */
export function writeTree(dir, { files = 5000, seed = 5000, prefix = "tree" } = {}) {
  const next = prng(seed);
  let bytes = 0;
  for (let i = 0; i < files; i++) {
    const r = next();
    const size = r < 0.75 ? 100 + Math.floor(next() * 1900) : r < 0.97 ? 2048 + Math.floor(next() * 14336) : 16384 + Math.floor(next() * 114688);
    const rel = `${prefix}/d${String(i % 10).padStart(2, "0")}/e${String(Math.floor(i / 10) % 10).padStart(2, "0")}/f${String(i).padStart(4, "0")}.txt`;
    write(dir, rel, textContent(rel, size, next));
    bytes += size;
  }
  return { files, bytes };
}

/**
 * A node-like tree of 20,000 files, about 77 MB: package.json and src/ beside node_modules/ of 399 packages, each with
 * a package.json, README.md, LICENSE, index.js and lib/ and dist/ files — mostly small (0.2–4 KB), a few large (≤ 96 KB).
 */
export function writeNodeTree(dir, { packages = 399, perPackage = 50, seed = 20000 } = {}) {
  const next = prng(seed);
  let files = 0;
  let bytes = 0;
  const put = (rel, size) => {
    write(dir, rel, textContent(rel, size, next));
    files++;
    bytes += size;
  };
  const sized = () => {
    const r = next();
    return r < 0.85 ? 200 + Math.floor(next() * 3800) : r < 0.98 ? 4096 + Math.floor(next() * 8192) : 16384 + Math.floor(next() * 81920);
  };
  write(dir, "package.json", '{ "name": "app", "version": "1.0.0", "dependencies": {} }\n');
  files++;
  for (let i = 0; i < 49; i++) put(`src/m${String(i).padStart(2, "0")}.js`, sized());
  for (let p = 0; p < packages; p++) {
    const pkg = `node_modules/pkg-${String(p).padStart(3, "0")}`;
    for (const f of ["package.json", "README.md", "LICENSE", "index.js"]) put(`${pkg}/${f}`, f === "index.js" ? sized() : 300 + Math.floor(next() * 1500));
    for (let i = 4; i < perPackage; i++) put(`${pkg}/${i % 3 === 0 ? "dist" : "lib"}/f${String(i).padStart(2, "0")}.js`, sized());
  }
  return { files, bytes };
}

// --- projects -------------------------------------------------------------------------------------------------

const DEPS = "zlib 1.3\nlibfoo 2.1\nbar 0.9\nbaz 4.2\n";

function smallProject() {
  return {
    name: "small",
    description: "single stage: WORKDIR, manifest COPY + RUN, source COPY + RUN, ARG, late COPY",
    stages: [
      {
        name: null,
        lines: [
          "FROM busybox:local",
          "ENV APP=small",
          "WORKDIR /srv/small",
          "COPY deps.txt ./",
          "RUN : r01 && sort deps.txt > deps.lock",
          "COPY src/ ./src/",
          "RUN : r02 && cat src/*.txt | md5sum > src.sum",
          "ARG VERSION=1",
          'RUN : r03 && echo "$VERSION" > version',
          "COPY static/late.txt ./",
          'CMD ["cat", "version"]',
        ],
      },
    ],
    files(dir) {
      const next = prng(11);
      write(dir, "deps.txt", DEPS);
      for (let i = 0; i < 8; i++) write(dir, `src/m${i}.txt`, textContent(`src/m${i}.txt`, 2000 + i * 300, next));
      write(dir, "static/late.txt", "late v0\n");
    },
    changes: {
      early: { file: "deps.txt", line: "COPY deps.txt ./" },
      late: { file: "static/late.txt", line: "COPY static/late.txt ./" },
      arg: { name: "VERSION", line: ": r03" },
    },
  };
}

function multiProject() {
  const builder = (x) => ({
    name: `builder-${x}`,
    lines: [
      `FROM busybox:local AS builder-${x}`,
      `WORKDIR /build/${x}`,
      `COPY ${x}/deps.txt ./`,
      `RUN : r${x}1 && sort deps.txt > deps.lock`,
      `COPY ${x}/src/ ./src/`,
      `RUN : r${x}2 && mkdir -p /out && cat deps.lock src/*.txt > /out/${x}.txt && md5sum /out/${x}.txt > /out/${x}.sum`,
    ],
  });
  return {
    name: "multi",
    description: "two independent builder stages, final stage COPY --from both",
    stages: [
      builder("a"),
      builder("b"),
      {
        name: null,
        lines: [
          "FROM busybox:local",
          "WORKDIR /srv/app",
          "COPY --from=builder-a /out/ ./a/",
          "COPY --from=builder-b /out/ ./b/",
          "COPY static/late.txt ./",
          "ARG VERSION=1",
          'RUN : rf1 && echo "$VERSION" > version && ls -R > manifest',
          'CMD ["cat", "version"]',
        ],
      },
    ],
    files(dir) {
      const next = prng(12);
      for (const x of ["a", "b"]) {
        write(dir, `${x}/deps.txt`, `${DEPS}${x}\n`);
        for (let i = 0; i < 6; i++) write(dir, `${x}/src/m${i}.txt`, textContent(`${x}/src/m${i}.txt`, 3000 + i * 500, next));
      }
      write(dir, "static/late.txt", "late v0\n");
    },
    changes: {
      early: { file: "a/deps.txt", line: "COPY a/deps.txt ./" },
      late: { file: "static/late.txt", line: "COPY static/late.txt ./" },
      arg: { name: "VERSION", line: ": rf1" },
    },
  };
}

function ctx5kProject() {
  return {
    name: "ctx5k",
    description: "5,000-file context (nested dirs, 100 B–128 KB, ~25 MB) COPY'd whole",
    stages: [
      {
        name: null,
        lines: [
          "FROM busybox:local",
          "WORKDIR /srv/ctx",
          "COPY deps.txt ./",
          "RUN : c01 && sort deps.txt > deps.lock",
          "COPY tree/ ./tree/",
          "RUN : c02 && find tree -type f | wc -l > count",
          "ARG VERSION=1",
          'RUN : c03 && echo "$VERSION" > version',
        ],
      },
    ],
    files(dir) {
      write(dir, "deps.txt", DEPS);
      writeTree(dir);
    },
    // The late change is one file deep in the 5,000-file tree: the context walk must find it without re-reading the rest.
    changes: {
      early: { file: "deps.txt", line: "COPY deps.txt ./" },
      late: { file: "tree/d07/e03/f4237.txt", line: "COPY tree/ ./tree/" },
      arg: { name: "VERSION", line: ": c03" },
    },
  };
}

function ctx20kProject() {
  return {
    name: "ctx20k",
    description: "node-like project: manifest COPY + RUN, then `COPY . .` of a 20,000-file tree (~77 MB) last",
    stages: [
      {
        name: null,
        lines: [
          "FROM busybox:local",
          "WORKDIR /app",
          "COPY package.json ./",
          "RUN : n01 && wc -c package.json > /tmp/install.log",
          "ARG VERSION=1",
          'RUN : n02 && echo "$VERSION" > /tmp/version',
          "COPY . .",
          'CMD ["cat", "package.json"]',
        ],
      },
    ],
    files(dir) {
      writeNodeTree(dir);
    },
    // The late change is one file deep in node_modules: only the last COPY re-runs.
    changes: {
      early: { file: "package.json", line: "COPY package.json ./" },
      late: { file: "node_modules/pkg-321/lib/f22.js", line: "COPY . ." },
      arg: { name: "VERSION", line: ": n02" },
    },
  };
}

function fortyProject() {
  const lines = [
    "FROM busybox:local",
    'LABEL org.opencontainers.image.title="forty"',
    "ENV APP=forty MODE=bench",
    "WORKDIR /srv/forty",
    "COPY deps.txt ./",
    "RUN : f00 && sort deps.txt > deps.lock",
  ];
  for (let i = 1; lines.length < 32; i++) {
    lines.push(`COPY parts/p${i}.txt ./parts/`);
    lines.push(`RUN : f${String(i).padStart(2, "0")} && cat parts/p${i}.txt >> all.txt && wc -c all.txt > size${i}`);
    if (i % 3 === 0) lines.push(`ENV STEP_${i}=${i}`);
    if (i % 4 === 0) lines.push(`LABEL step${i}="${i}"`);
  }
  lines.push(
    "ARG VERSION=1",
    'RUN : f98 && echo "$VERSION" > version',
    "COPY static/late.txt ./",
    "EXPOSE 8080",
    "STOPSIGNAL SIGTERM",
    "USER app",
    'CMD ["cat", "version"]',
  );
  const nparts = lines.filter((l) => l.startsWith("COPY parts/")).length;
  return {
    name: "forty",
    description: "40-instruction Dockerfile (COPY/RUN pairs, ENV, LABEL, ARG, USER, CMD)",
    stages: [{ name: null, lines }],
    files(dir) {
      const next = prng(40);
      write(dir, "deps.txt", DEPS);
      for (let i = 1; i <= nparts; i++) write(dir, `parts/p${i}.txt`, textContent(`parts/p${i}.txt`, 500 + i * 40, next));
      write(dir, "static/late.txt", "late v0\n");
    },
    changes: {
      early: { file: "deps.txt", line: "COPY deps.txt ./" },
      late: { file: "static/late.txt", line: "COPY static/late.txt ./" },
      arg: { name: "VERSION", line: ": f98" },
    },
  };
}

function runHeavyProject() {
  const lines = ["FROM busybox:local", "WORKDIR /srv/runs", "COPY deps.txt ./"];
  for (let i = 1; i <= 13; i++) lines.push(`RUN : h${String(i).padStart(2, "0")} && seq 1 ${i * 100} | md5sum > h${i}.out`);
  lines.push("ARG VERSION=1", 'RUN : h14 && echo "$VERSION" > version', "COPY static/late.txt ./", "RUN : h15 && cat late.txt h*.out | md5sum > final.sum");
  return {
    name: "runheavy",
    description: "15 RUN steps after a manifest COPY",
    stages: [{ name: null, lines }],
    files(dir) {
      write(dir, "deps.txt", DEPS);
      write(dir, "static/late.txt", "late v0\n");
    },
    changes: {
      early: { file: "deps.txt", line: "COPY deps.txt ./" },
      late: { file: "static/late.txt", line: "COPY static/late.txt ./" },
      arg: { name: "VERSION", line: ": h14" },
    },
  };
}

export const PROJECTS = {
  small: smallProject,
  multi: multiProject,
  ctx5k: ctx5kProject,
  ctx20k: ctx20kProject,
  forty: fortyProject,
  runheavy: runHeavyProject,
};

// --- the model ------------------------------------------------------------------------------------------------

/** The tag that identifies a layer step in any builder's progress output: `: rNN` for RUN, the whole line otherwise. */
function tagOf(kind, text) {
  if (kind === "RUN") {
    const m = /^RUN : (\S+)/.exec(text);
    if (!m) throw new Error(`fixture RUN lines start with ": <tag>": ${text}`);
    return `: ${m[1]}`;
  }
  return text;
}

/** Flatten a project's stages into a step list, check that every tag is unique, and write the Dockerfile. */
export function materializeProject(name, dir) {
  const make = PROJECTS[name];
  if (!make) throw new Error(`unknown bench project ${name}; known: ${Object.keys(PROJECTS).join(", ")}`);
  const p = make();
  const steps = [];
  p.stages.forEach((st, si) => {
    st.lines.forEach((text, li) => {
      const kind = text.split(" ")[0];
      if (LAYER_KINDS.has(kind)) steps.push({ stage: si, index: li, kind, text, tag: tagOf(kind, text) });
    });
  });
  for (const a of steps)
    for (const b of steps) if (a !== b && b.text.includes(a.tag)) throw new Error(`fixture ${name}: tag ${a.tag} is not unique (also in ${b.text})`);
  const instructions = p.stages.reduce((n, s) => n + s.lines.length, 0);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Dockerfile"), p.stages.map((s) => s.lines.join("\n")).join("\n\n") + "\n");
  p.files(dir);
  return { ...p, dir, steps, instructions };
}

/**
 * The layer steps a change must invalidate: in the stage of the line that reads the change, that line and every later
 * one; in every stage that reads an invalidated stage (FROM or COPY --from), from that line on. Everything else must hit.
 */
export function expectedMisses(project, line) {
  const missed = new Set();
  const stageNames = project.stages.map((s) => s.name);
  const dirty = new Set();
  const start = project.steps.find((s) => s.text.includes(line));
  if (!start) throw new Error(`fixture ${project.name}: no step reads ${line}`);
  const mark = (si, from) => {
    for (const s of project.steps) if (s.stage === si && s.index >= from) missed.add(s.tag);
    dirty.add(si);
  };
  mark(start.stage, start.index);
  for (let changed = true; changed;) {
    changed = false;
    project.stages.forEach((st, si) => {
      st.lines.forEach((text, li) => {
        const from = /--from=(\S+)/.exec(text)?.[1] ?? (text.startsWith("FROM ") ? text.split(/\s+/)[1] : undefined);
        const src = from === undefined ? -1 : stageNames.indexOf(from);
        if (src >= 0 && dirty.has(src)) {
          const before = missed.size;
          mark(si, li);
          if (missed.size !== before) changed = true;
        }
      });
    });
  }
  return missed;
}

/**
 * Check a build's reported steps against the expectation. `steps` are {name, cached} from a builder's output; only those
 * naming a fixture layer step count. `mustMiss` is the set of tags that must miss (all others must hit). With
 * `onlyStages`, steps of other stages are reported but not checked (BuildKit's inline cache holds the final stage only).
 */
export function checkHits(project, steps, mustMiss, { onlyStages } = {}) {
  const seen = new Map();
  for (const s of steps) {
    const st = project.steps.find((p) => s.name.includes(p.tag));
    if (st) seen.set(st.tag, { step: st, cached: Boolean(s.cached) });
  }
  const problems = [];
  let hits = 0;
  for (const st of project.steps) {
    const got = seen.get(st.tag);
    const checked = !onlyStages || onlyStages.includes(st.stage);
    if (!got) {
      if (checked) problems.push(`step not reported: ${st.text}`);
      continue;
    }
    if (got.cached) hits++;
    if (!checked) continue;
    const wantHit = !mustMiss.has(st.tag);
    if (got.cached !== wantHit) problems.push(`${wantHit ? "expected a hit, got a miss" : "expected a miss, got a hit"}: ${st.text}`);
  }
  return { hits, total: project.steps.length, expectedHits: project.steps.length - mustMiss.size, ok: problems.length === 0, problems };
}
