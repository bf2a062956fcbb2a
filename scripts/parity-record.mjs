#!/usr/bin/env node
// Records what BuildKit produces for the cases of fixtures/parity (all, or the ones named): builds each with Docker's
// BuildKit (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, dockerd must be running: see ../shared/PEERS.md) on the same
// busybox base tsbuild's tests use, and writes expected.txt (the image's /report) and history.txt (created_by,
// newest first, the base's own entries left out), or for a case with `expected-error` BuildKit's error message
// (buildkit-error.txt). Never run by the tests: they compare tsbuild with these files.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, linkSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { archiveLayers, layerLines } from "./parity-layers.mjs";

const repo = resolve(import.meta.dirname, "..");
const corpus = join(repo, "fixtures/parity");
const docker = process.env.DOCKER ?? "/usr/bin/docker";
// Another session may be recording at the same time: PARITY_BASE gives this one a base tag of its own.
const BASE = process.env.PARITY_BASE ?? "parity-record/busybox:1";
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });

/**
 * Docker 20.10 exports a build's layers through its own layer store, whose differ compares directory times: every
 * RUN layer lists /etc (runc's /etc/hosts stub touched it) and any directory whose mtime alone changed. Current
 * BuildKit's overlayfs differ (util/overlay `sameDirent`) records a directory only when its mode, owner or a child
 * changed, and its stub cleaner restores the parent's times: a directory entry with nothing below it in its layer
 * whose type, mode and owner are what the layers below already had is dropped here, and so are the empty network
 * file stubs 20.10 sometimes leaves; whiteouts and opaque directories are written as current BuildKit writes them.
 */
const STUBS = ["etc/hosts", "etc/resolv.conf"];
const parentOf = (p) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
const baseName = (p) => p.slice(p.lastIndexOf("/") + 1);
const entry = (line) => {
  const [type, mode, owner, size, ...rest] = line.split(" ");
  return { line, meta: `${type} ${mode} ${owner}`, type, size, path: rest.join(" ").split(" -> ")[0] };
};
const whiteout = (path) => entry(`f 0000 0:0 0 ${path}`);
// Go's filepath.Walk order, a whiteout where the name it deletes is (src/layer/tar-writer.ts sorts the same way).
const walkKey = (c) => (c.startsWith(".wh.") && c !== ".wh..wh..opq" ? c.slice(4) : c);
const cmp = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));
function walkOrder(a, b) {
  const pa = a.path.split("/");
  const pb = b.path.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = cmp(walkKey(pa[i]), walkKey(pb[i])) || cmp(pa[i], pb[i]);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}
function listingAsCurrentBuildKit(layers, skip) {
  const below = new Map(); // path -> "TYPE MODE UID:GID" of the merged view so far
  const out = [];
  for (const [i, lines] of layers.entries()) {
    // 20.10 sometimes leaves the empty /etc/hosts and /etc/resolv.conf bind targets; current BuildKit's
    // MountStubsCleaner removes a stub the image did not have.
    let layer = lines
      .map(entry)
      .filter((e) => !(STUBS.includes(e.path) && e.type === "f" && e.size === "0" && !below.has(e.path)))
      // Docker's whiteouts carry its own mode and link fields; containerd's changeWriter writes a bare 0000 file.
      .map((e) => (baseName(e.path).startsWith(".wh.") ? whiteout(e.path) : e));
    // Docker marks a recreated directory opaque; current BuildKit's overlayfs differ walks it against the lower one
    // (continuity's double walk) and whites out each name that is gone, in walk order.
    const opaque = layer.filter((e) => baseName(e.path) === ".wh..wh..opq").map((e) => parentOf(e.path));
    if (opaque.length > 0) {
      const paths = new Set(layer.map((e) => e.path));
      const dirs = new Set(layer.filter((e) => e.type === "d").map((e) => e.path));
      layer = layer.filter((e) => baseName(e.path) !== ".wh..wh..opq");
      for (const o of opaque)
        for (const p of below.keys())
          if (p.startsWith(`${o}/`) && !paths.has(p) && (parentOf(p) === o || dirs.has(parentOf(p)))) layer.push(whiteout(`${parentOf(p)}/.wh.${baseName(p)}`));
      layer.sort(walkOrder);
    }
    // Deepest first, so a parent whose only entries below were such directories goes too.
    let kept = layer;
    for (const d of layer.filter((e) => e.type === "d" && below.get(e.path) === e.meta).sort((a, b) => b.path.split("/").length - a.path.split("/").length))
      if (!kept.some((o) => o.path.startsWith(`${d.path}/`))) kept = kept.filter((o) => o !== d);
    for (const e of layer) {
      const name = baseName(e.path);
      if (name.startsWith(".wh.")) {
        const gone = parentOf(e.path) === "" ? name.slice(4) : `${parentOf(e.path)}/${name.slice(4)}`;
        for (const p of [...below.keys()]) if (p === gone || p.startsWith(`${gone}/`)) below.delete(p);
      } else below.set(e.path, e.meta);
    }
    if (i < skip) continue;
    out.push(`== layer ${i + 1 - skip}`, ...kept.map((e) => e.line));
  }
  return out;
}

const work = mkdtempSync(join(tmpdir(), "parity-record-"));
try {
  const archive = join(work, "busybox.tar");
  sh(join(repo, "scripts/make-busybox-base.sh"), [archive, BASE]);
  sh(docker, ["load", "-i", archive]);
  const baseHistory = sh(docker, ["history", "-q", BASE]).trim().split("\n").length;
  const baseUnpacked = join(work, "base-saved");
  mkdirSync(baseUnpacked);
  sh("tar", ["-xf", archive, "-C", baseUnpacked]);
  const baseLayers = archiveLayers(baseUnpacked).length;
  // Docker 20.10's frontend writes unset config fields as null (`"OnBuild": null`); current BuildKit omits them.
  const withoutNulls = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));
  // created_by, newest first, marking entries that add no layer (the same format test/parity.test.ts writes).
  const historyLines = (h) => h.map((e) => `${e.created_by ?? ""}${e.empty_layer ? "\t(empty_layer)" : ""}`).reverse();
  const force = process.argv.includes("--force");
  const args = process.argv.slice(2).filter((a) => a !== "--force");
  const names = args.length ? args : readdirSync(corpus).filter((n) => existsSync(join(corpus, n, "Dockerfile")));
  for (const name of names) {
    const dir = join(corpus, name);
    if (existsSync(join(dir, "hand-edited")) && !force) {
      console.log(`skipped ${name}: its expectation was edited by hand (${join(dir, "hand-edited")}); --force re-records it`);
      continue;
    }
    const ctx = join(work, name);
    mkdirSync(ctx);
    if (existsSync(join(dir, "context"))) cpSync(join(dir, "context"), ctx, { recursive: true, verbatimSymlinks: true });
    if (existsSync(join(dir, "context-modes")))
      for (const line of readFileSync(join(dir, "context-modes"), "utf8").split("\n").filter(Boolean)) {
        const [mode, path] = line.split(/\s+/);
        chmodSync(join(ctx, path), parseInt(mode, 8));
      }
    // `TARGET LINKNAME` lines: hard links git cannot keep, made in the copy of the context.
    if (existsSync(join(dir, "context-links")))
      for (const line of readFileSync(join(dir, "context-links"), "utf8").split("\n").filter(Boolean)) {
        const [target, name] = line.split(/\s+/);
        linkSync(join(ctx, target), join(ctx, name));
      }
    const dockerfile = join(work, `${name}.Dockerfile`);
    // The base is named in FROM, and may be in COPY --from= and RUN --mount from= too.
    writeFileSync(dockerfile, readFileSync(join(dir, "Dockerfile"), "utf8").replace(/\bbusybox:local\b/g, BASE));
    const buildArgs = existsSync(join(dir, "build-args"))
      ? readFileSync(join(dir, "build-args"), "utf8")
          .split("\n")
          .filter(Boolean)
          .flatMap((a) => ["--build-arg", a])
      : [];
    const tag = `${BASE.split("/")[0]}/${name}:1`;
    // A case whose expected result is an error (`expected-error`: tsbuild's code, hand-written) records BuildKit's message.
    const expectsError = existsSync(join(dir, "expected-error"));
    // The shared dockerd now and then starts a RUN on a rootfs without its base ("/bin/sh: no such file or
    // directory") while other sessions use it; such a build is tried again, a real failure is not.
    let failure;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        sh(docker, ["build", "-q", "--no-cache", "-t", tag, ...buildArgs, "-f", dockerfile, ctx], {
          env: { ...process.env, DOCKER_BUILDKIT: "1" },
          stdio: "pipe",
        });
        failure = undefined;
        break;
      } catch (e) {
        failure = String(e.stderr);
        if (expectsError || !/no such file or directory|executable file not found/.test(failure)) break;
      }
    }
    if (failure !== undefined) {
      const lines = failure.split("\n").filter(Boolean);
      if (expectsError) {
        // Its last line is the error; BuildKit's temporary mount paths differ on every run.
        const message = (lines.at(-1) ?? "")
          .replace(/buildkit-mount\d+/g, "buildkit-mountN")
          .replace(/\/var\/lib\/docker\/overlay2\/\w+\//g, "/var/lib/docker/overlay2/ID/");
        writeFileSync(join(dir, "buildkit-error.txt"), message + "\n");
        console.log(`recorded ${name} (BuildKit failed, as expected)`);
        continue;
      }
      console.error(`${name}: BuildKit failed:\n${lines.slice(-12).join("\n")}`);
      process.exitCode = 1;
      continue;
    }
    if (expectsError) {
      console.error(`${name}: BuildKit succeeded, but the case has expected-error`);
      process.exitCode = 1;
      sh(docker, ["rmi", "-f", tag]);
      continue;
    }
    const text = readFileSync(join(dir, "Dockerfile"), "utf8");
    const saved = join(work, `${name}.tar`);
    sh(docker, ["save", "-o", saved, tag]);
    const unpacked = join(work, `${name}-saved`);
    mkdirSync(unpacked);
    sh("tar", ["-xf", saved, "-C", unpacked]);
    // /report from the newest layer that has it, rather than `docker run`: no entrypoint or shell in the way, and an
    // image whose rootfs Docker 20.10 cannot assemble (an opaque directory over the base) still records.
    if (text.includes("/report")) {
      const layer = archiveLayers(unpacked)
        .reverse()
        .find((l) =>
          sh("tar", ["-tf", join(unpacked, l)])
            .split("\n")
            .includes("report"),
        );
      if (layer) writeFileSync(join(dir, "expected.txt"), sh("tar", ["-xOf", join(unpacked, layer), "report"]));
    }
    const config = JSON.parse(readFileSync(join(unpacked, JSON.parse(readFileSync(join(unpacked, "manifest.json"), "utf8"))[0].Config), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify(withoutNulls(config.config ?? {}), null, 2) + "\n");
    const scratch = text.match(/^FROM\s+scratch\b/im) && !text.match(/^FROM\s+busybox:local\b/im);
    const base = scratch ? 0 : baseHistory;
    writeFileSync(join(dir, "history.txt"), historyLines(config.history.slice(base)).join("\n") + "\n");
    // A case asks for a per-layer listing by having a layers.txt.
    if (existsSync(join(dir, "layers.txt"))) {
      const layers = [];
      for (const l of archiveLayers(unpacked)) layers.push(await layerLines(join(unpacked, l)));
      writeFileSync(join(dir, "layers.txt"), listingAsCurrentBuildKit(layers, scratch ? 0 : baseLayers).join("\n") + "\n");
    }
    sh(docker, ["rmi", "-f", tag]);
    console.log(`recorded ${name}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  try {
    sh(docker, ["rmi", "-f", BASE]);
  } catch {}
}
