#!/usr/bin/env node
// The allowed-import check (docs/architecture.md, "Allowed imports"): every relative import in src/ must go from a
// folder to one it may use, and the folder graph must have no cycle. A small script rather than dependency-cruiser:
// the rule is one table, and the script needs nothing installed. Exits 1 naming each offending import.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SRC = join(ROOT, "src");

/** What the solver may use: everything below it in the data flow. */
const SOLVER_DEPS = [
  "errors",
  "source-range",
  "engine",
  "frontend",
  "image",
  "store",
  "layer",
  "context",
  "sources",
  "cache",
  "executor",
  "snapshot",
  "registry",
  "exporter",
  "progress",
  "util",
  "fs",
];

/** folder → folders it may import (itself always). Root modules count as folders named after the file. */
export const ALLOWED = {
  errors: ["source-range"],
  "source-range": [],
  util: ["errors"],
  image: ["errors", "source-range", "util"],
  progress: ["errors", "source-range"],
  frontend: ["errors", "source-range", "image", "util"],
  store: ["errors", "source-range", "image", "util"],
  layer: ["errors", "source-range", "image", "store", "util"],
  sources: ["errors", "source-range", "image", "store", "util", "fs"],
  context: ["errors", "source-range", "frontend", "image", "store", "layer", "util", "fs", "sources"],
  cache: ["errors", "source-range", "image", "store", "layer", "context", "util", "registry", "exporter", "progress", "fs"],
  executor: ["errors", "source-range", "image", "util", "fs"],
  fs: ["errors", "source-range", "util"],
  snapshot: ["errors", "source-range", "executor", "layer", "store", "image", "util", "fs"],
  registry: ["errors", "source-range", "image", "store", "layer", "progress", "util", "fs", "engine"],
  exporter: ["errors", "source-range", "image", "store", "layer", "registry", "progress", "util", "engine", "context"],
  engine: ["errors", "source-range", "store", "progress", "snapshot", "executor", "util"],
  solver: SOLVER_DEPS,
  api: [...SOLVER_DEPS, "solver"],
  index: ["*"],
  cli: ["*"],
};

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith(".ts") && !p.endsWith(".generated.ts")) out.push(p);
  }
  return out;
}

function folderOf(file) {
  const rel = relative(SRC, file).split(sep);
  return rel.length === 1 ? (rel[0] ?? "").replace(/\.ts$/, "") : (rel[0] ?? "");
}

export function importEdges() {
  const edges = [];
  for (const file of files(SRC)) {
    const text = readFileSync(file, "utf8");
    // Type-only imports count too: a cycle of types is still a cycle in the design.
    for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+["'](\.[^"']+)["']/gm)) {
      const target = resolve(dirname(file), (m[1] ?? "").replace(/\.js$/, ".ts"));
      const from = folderOf(file);
      const to = folderOf(target);
      if (from !== to) edges.push({ from, to, file: relative(ROOT, file), spec: m[1] });
    }
  }
  return edges;
}

function main() {
  const problems = [];
  const edges = importEdges();
  for (const e of edges) {
    const allowed = ALLOWED[e.from];
    if (!allowed) problems.push(`${e.file}: folder "${e.from}" is not in the allowed-import table (docs/architecture.md)`);
    else if (!allowed.includes("*") && !allowed.includes(e.to)) problems.push(`${e.file}: ${e.from}/ may not import ${e.to}/ (${e.spec})`);
  }
  // Cycles between folders (the table above could allow one by mistake).
  const graph = new Map();
  for (const e of edges) {
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    graph.get(e.from).add(e.to);
  }
  const state = new Map();
  const stack = [];
  const visit = (n) => {
    if (state.get(n) === 2) return;
    if (state.get(n) === 1) {
      problems.push(`folder import cycle: ${[...stack.slice(stack.indexOf(n)), n].join(" → ")}`);
      return;
    }
    state.set(n, 1);
    stack.push(n);
    for (const m of graph.get(n) ?? []) visit(m);
    stack.pop();
    state.set(n, 2);
  };
  for (const n of graph.keys()) visit(n);
  if (problems.length) {
    for (const p of [...new Set(problems)]) console.error(p);
    console.error(`${new Set(problems).size} import problem(s); the allowed imports are in docs/architecture.md`);
    process.exit(1);
  }
  console.log(`imports ok: ${edges.length} cross-folder imports, no cycle`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
