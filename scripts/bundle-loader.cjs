#!/bin/sh
":" //; [ -z "$NODE_EXTRA_CA_CERTS" ] || [ -n "$NODE_OPTIONS" ] || { TSBUILD_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export TSBUILD_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; exec node "$0" "$@"
// The CLI's entry (copied to dist/bundle/bin.js by scripts/bundle.mjs): runs the one-file bundle tsbuild.cjs from its V8
// code cache, which skips most of parsing and compiling it on every start. CommonJS on purpose: an ES module entry
// pulls in Node's ES module loader, milliseconds before any of tsbuild runs.
// Run as a program it is first a shell script (line 2 is a string and a comment to JavaScript): Node builds its whole
// root certificate store before any JavaScript runs when NODE_EXTRA_CA_CERTS is set (~60 ms for a system bundle, half
// of a no-op rebuild), so the shell hands the file over as TSBUILD_EXTRA_CA_CERTS and deferExtraCa adds it at the first
// TLS connection. With NODE_OPTIONS set (--use-openssl-ca changes the default store) Node reads it itself. Keep
// prettier off this file (lint covers scripts/*.mjs only): it would put `;` after the string, and the shell would then
// run `//` as a command.
"use strict";
// Gzip of exported layers runs members on libuv's thread pool, which starts with 4 threads at its first use: more
// cores need more threads, set before anything uses the pool (too late from an ES module entry).
if (require.main === module && process.env.UV_THREADPOOL_SIZE === undefined)
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, require("node:os").availableParallelism() + 2));
const { readFileSync, statSync } = require("node:fs");
const { join } = require("node:path");
const { Script } = require("node:vm");
const Module = require("node:module");

/** Compiles the bundle as a CommonJS module (from `cachedData` when V8 accepts it) and evaluates it. */
function compileBundle(filename, source, cachedData, req = require) {
  const script = new Script(Module.wrap(source), { filename, cachedData });
  const module = { exports: {}, filename, id: filename, loaded: false };
  // The bundle requires only Node's built-ins (every package is bundled in), which any require resolves.
  script.runInThisContext().call(module.exports, module.exports, req, module, filename, join(filename, ".."));
  return { script, cli: module.exports };
}

// createSecureContext's options that shape a context: without any of them every connection can share one context.
const CONTEXT_OPTIONS = [
  "ca",
  "cert",
  "key",
  "pfx",
  "passphrase",
  "sigalgs",
  "privateKeyIdentifier",
  "privateKeyEngine",
  "ciphers",
  "ecdhCurve",
  "dhparam",
  "crl",
  "honorCipherOrder",
  "sessionIdContext",
  "ticketKeys",
  "sessionTimeout",
  "clientCertEngine",
  "secureOptions",
  "secureProtocol",
  "minVersion",
  "maxVersion",
];

/**
 * Trust `file`'s certificates beside Node's own roots, as NODE_EXTRA_CA_CERTS would have, from the first TLS context
 * on: tls.connect (https, proxy tunnels) asks `tls.createSecureContext`, which gets `ca` unless the caller chose its
 * own (which replaces the extra certificates under Node too). A file that cannot be read is a warning, as Node's.
 */
function deferExtraCa(file) {
  const tls = require("node:tls");
  const create = tls.createSecureContext;
  let ca;
  let shared;
  const roots = () => {
    if (ca === undefined) {
      try {
        ca = [...tls.rootCertificates, readFileSync(file, "utf8")];
      } catch (e) {
        process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${e instanceof Error ? e.message : e}`);
        ca = null;
      }
    }
    return ca;
  };
  tls.createSecureContext = function createSecureContext(options) {
    if (options?.ca !== undefined || roots() === null) return create(options);
    // Parsing ~150 roots takes tens of milliseconds: once per process, as Node's own store, not per connection.
    if (options === undefined || CONTEXT_OPTIONS.every((k) => options[k] === undefined)) return (shared ??= create({ ca }));
    return create({ ...options, ca });
  };
}

/** `require` for the bundle: the first TLS-using built-in it loads gets the deferred NODE_EXTRA_CA_CERTS first. */
function bundleRequire(extraCa) {
  if (extraCa === undefined) return require;
  let pending = true;
  return (id) => {
    if (pending && /^(node:)?(tls|https|http2)$/.test(id)) {
      pending = false;
      deferExtraCa(extraCa);
    }
    return require(id);
  };
}

if (require.main === module) {
  // What the shell line moved goes back where the user put it, so build args, secrets and children see it unchanged
  // (Node reads it only at start-up: setting it now loads nothing). Beside one Node has read, it is a stray variable.
  const moved = process.env.TSBUILD_EXTRA_CA_CERTS;
  const deferred = process.env.NODE_EXTRA_CA_CERTS === undefined ? moved : undefined;
  delete process.env.TSBUILD_EXTRA_CA_CERTS;
  if (deferred !== undefined) process.env.NODE_EXTRA_CA_CERTS = deferred;
  const file = join(__dirname, "tsbuild.cjs");
  let cache;
  try {
    // V8 checks a cache against the source's length only: a bundle edited after its cache was made (same length or
    // not) compiles from source instead. npm's packing gives both one mtime, which passes.
    if (statSync(`${file}.cache`).mtimeMs >= statSync(file).mtimeMs) cache = readFileSync(`${file}.cache`);
  } catch {
    cache = undefined; // no cache (a build without one): compile from source
  }
  compileBundle(file, readFileSync(file, "utf8"), cache, bundleRequire(deferred)).cli.runCli();
} else {
  module.exports = { compileBundle };
}
