#!/usr/bin/env node
// Records what BuildKit produces for the cases of fixtures/parity (all, or the ones named): builds each with Docker's
// BuildKit (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, dockerd must be running: see ../shared/PEERS.md) on the same
// busybox base tsbuild's tests use, and writes expected.txt (the image's /report) and history.txt (created_by,
// newest first, the base's own entries left out). Never run by the tests: they compare tsbuild with these files.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync, mkdirSync } from "node:fs";
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
  const names = process.argv.slice(2).length ? process.argv.slice(2) : readdirSync(corpus).filter((n) => existsSync(join(corpus, n, "Dockerfile")));
  for (const name of names) {
    const dir = join(corpus, name);
    const ctx = join(work, name);
    mkdirSync(ctx);
    if (existsSync(join(dir, "context"))) cpSync(join(dir, "context"), ctx, { recursive: true });
    if (existsSync(join(dir, "context-modes")))
      for (const line of readFileSync(join(dir, "context-modes"), "utf8").split("\n").filter(Boolean)) {
        const [mode, path] = line.split(/\s+/);
        chmodSync(join(ctx, path), parseInt(mode, 8));
      }
    const dockerfile = join(work, `${name}.Dockerfile`);
    writeFileSync(dockerfile, readFileSync(join(dir, "Dockerfile"), "utf8").replace(/^(FROM\s+)busybox:local\b/gim, `$1${BASE}`));
    const buildArgs = existsSync(join(dir, "build-args"))
      ? readFileSync(join(dir, "build-args"), "utf8")
          .split("\n")
          .filter(Boolean)
          .flatMap((a) => ["--build-arg", a])
      : [];
    const tag = `parity-record/${name}:1`;
    try {
      sh(docker, ["build", "-q", "--no-cache", "-t", tag, ...buildArgs, "-f", dockerfile, ctx], {
        env: { ...process.env, DOCKER_BUILDKIT: "1" },
        stdio: "pipe",
      });
    } catch (e) {
      console.error(`${name}: BuildKit failed:\n${String(e.stderr).split("\n").slice(-12).join("\n")}`);
      process.exitCode = 1;
      continue;
    }
    writeFileSync(join(dir, "expected.txt"), sh(docker, ["run", "--rm", tag, "cat", "/report"]));
    const history = sh(docker, ["history", "--no-trunc", "--format", "{{.CreatedBy}}", tag]).trimEnd().split("\n");
    writeFileSync(join(dir, "history.txt"), history.slice(0, history.length - baseHistory).join("\n") + "\n");
    sh(docker, ["rmi", "-f", tag]);
    console.log(`recorded ${name}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  try {
    sh(docker, ["rmi", "-f", BASE]);
  } catch {}
}
