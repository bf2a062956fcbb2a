// Starts Debian's docker-registry (distribution 2.x) on 127.0.0.1 with a random free port, a temp storage dir and
// a generated config.yml; optionally with htpasswd (Basic) or token (Bearer) auth. stop() kills it and removes
// everything. A missing binary fails the test with the apt package to install.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";

const run = promisify(execFile);

export interface RegistryServer {
  /** "127.0.0.1:PORT" — what image references use. */
  host: string;
  port: number;
  url: string;
  dir: string;
  /** The registry's own log (stderr), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

export interface RegistryServerOptions {
  /** Basic auth: users and passwords (bcrypt htpasswd file made with `htpasswd -Bbn`). */
  htpasswd?: Record<string, string>;
  /** Bearer auth: the token server's realm URL, service, issuer and the certificate that signs tokens. */
  token?: { realm: string; service: string; issuer: string; certFile: string };
}

async function need(cmd: string, pkg: string): Promise<void> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
  } catch {
    throw new Error(`${cmd} is not installed: apt-get install -y ${pkg} (see .ci/run)`);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`${url}/v2/`);
      await r.arrayBuffer();
      return; // 200 or 401: it is serving
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`docker-registry did not start within 15 s:\n${log()}`);
}

export async function startRegistry(opts: RegistryServerOptions = {}): Promise<RegistryServer> {
  await need("docker-registry", "docker-registry");
  const dir = await mkdtemp(join(tmpdir(), "tsbuild-registry-"));
  let child: ChildProcess | undefined;
  try {
    let auth = "";
    if (opts.htpasswd) {
      await need("htpasswd", "apache2-utils");
      const lines: string[] = [];
      for (const [user, pass] of Object.entries(opts.htpasswd)) lines.push((await run("htpasswd", ["-Bbn", user, pass])).stdout.trim());
      await writeFile(join(dir, "htpasswd"), lines.join("\n") + "\n");
      auth = `auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${join(dir, "htpasswd")}\n`;
    } else if (opts.token) {
      const t = opts.token;
      auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
    }
    const port = await freePort();
    const config = [
      "version: 0.1",
      "log:",
      `  level: ${process.env["TSBUILD_TEST_REGISTRY_LOG"] ?? "warn"}`,
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "  maintenance:",
      "    uploadpurging:",
      "      enabled: false",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString("hex")}`,
      auth,
    ].join("\n");
    await writeFile(join(dir, "config.yml"), config);
    let log = "";
    // Through a small sh wrapper: when this process dies without stop() (a test timeout kills the worker), its end
    // of the stdin pipe closes, `cat` returns and the registry is killed, so no registry outlives its test.
    // (fd 3: a background job's stdin is /dev/null in a non-interactive sh.)
    const script = 'exec 3<&0; docker-registry serve "$1" & r=$!; (cat <&3 >/dev/null; kill $r 2>/dev/null) & wait $r';
    child = spawn("sh", ["-c", script, "sh", join(dir, "config.yml")], { stdio: ["pipe", "pipe", "pipe"] });
    const collect = (d: Buffer) => {
      if (log.length < 200_000) log += d.toString();
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, child, () => log);
    const proc = child;
    return {
      host: `127.0.0.1:${port}`,
      port,
      url,
      dir,
      log: () => log,
      async stop() {
        if (proc.exitCode === null) {
          const exited = new Promise((r) => proc.once("exit", r));
          proc.stdin?.end(); // the wrapper kills the registry and exits
          const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(t);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    child?.stdin?.end();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
