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

const repo = resolve(import.meta.dirname, "..");
const corpus = join(repo, "fixtures/parity");
const docker = process.env.DOCKER ?? "/usr/bin/docker";
const BASE = "parity-record/busybox:1";
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });

const work = mkdtempSync(join(tmpdir(), "parity-record-"));
try {
  const archive = join(work, "busybox.tar");
  sh(join(repo, "scripts/make-busybox-base.sh"), [archive, BASE]);
  sh(docker, ["load", "-i", archive]);
  const baseHistory = sh(docker, ["history", "-q", BASE]).trim().split("\n").length;
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
    const tag = `parity-record/${name}:1`;
    // A case whose expected result is an error (`expected-error`: tsbuild's code, hand-written) records BuildKit's message.
    const expectsError = existsSync(join(dir, "expected-error"));
    try {
      sh(docker, ["build", "-q", "--no-cache", "-t", tag, ...buildArgs, "-f", dockerfile, ctx], {
        env: { ...process.env, DOCKER_BUILDKIT: "1" },
        stdio: "pipe",
      });
    } catch (e) {
      const lines = String(e.stderr).split("\n").filter(Boolean);
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
    if (text.includes("/report")) writeFileSync(join(dir, "expected.txt"), sh(docker, ["run", "--rm", tag, "cat", "/report"]));
    const saved = join(work, `${name}.tar`);
    sh(docker, ["save", "-o", saved, tag]);
    const unpacked = join(work, `${name}-saved`);
    mkdirSync(unpacked);
    sh("tar", ["-xf", saved, "-C", unpacked]);
    const config = JSON.parse(readFileSync(join(unpacked, JSON.parse(readFileSync(join(unpacked, "manifest.json"), "utf8"))[0].Config), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify(withoutNulls(config.config ?? {}), null, 2) + "\n");
    const base = text.match(/^FROM\s+scratch\b/im) && !text.match(/^FROM\s+busybox:local\b/im) ? 0 : baseHistory;
    writeFileSync(join(dir, "history.txt"), historyLines(config.history.slice(base)).join("\n") + "\n");
    sh(docker, ["rmi", "-f", tag]);
    console.log(`recorded ${name}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  try {
    sh(docker, ["rmi", "-f", BASE]);
  } catch {}
}
