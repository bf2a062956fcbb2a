#!/usr/bin/env node
// The CLI's entry (copied to dist/bundle/bin.js by scripts/bundle.mjs): runs the one-file bundle tsbuild.cjs from its V8
// code cache, which skips most of parsing and compiling it on every start. CommonJS on purpose: an ES module entry
// pulls in Node's ES module loader, milliseconds before any of tsbuild runs.
"use strict";
const { readFileSync, statSync } = require("node:fs");
const { join } = require("node:path");
const { Script } = require("node:vm");
const Module = require("node:module");

/** Compiles the bundle as a CommonJS module (from `cachedData` when V8 accepts it) and evaluates it. */
function compileBundle(filename, source, cachedData) {
  const script = new Script(Module.wrap(source), { filename, cachedData });
  const module = { exports: {}, filename, id: filename, loaded: false };
  // The bundle requires only Node's built-ins (every package is bundled in), which any require resolves.
  script.runInThisContext().call(module.exports, module.exports, require, module, filename, join(filename, ".."));
  return { script, cli: module.exports };
}

if (require.main === module) {
  const file = join(__dirname, "tsbuild.cjs");
  let cache;
  try {
    // V8 checks a cache against the source's length only: a bundle edited after its cache was made (same length or
    // not) compiles from source instead. npm's packing gives both one mtime, which passes.
    if (statSync(`${file}.cache`).mtimeMs >= statSync(file).mtimeMs) cache = readFileSync(`${file}.cache`);
  } catch {
    cache = undefined; // no cache (a build without one): compile from source
  }
  compileBundle(file, readFileSync(file, "utf8"), cache).cli.runCli();
} else {
  module.exports = { compileBundle };
}
