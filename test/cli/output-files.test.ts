// Output files through the CLI: --metadata-file, save -o and -o type=oci|docker write through devices, FIFOs and
// /dev/stdout and keep symlinks; an empty -o dest is a usage error (never "export into the cwd"); a full disk is a
// clear error. Also the locks around them: push holds the store lock (prune waits, rmi cannot break it) and
// concurrent logins all keep their config.json entry.
import { spawn } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild, tsbuildProcess } from "../helpers/cli.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { exec } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let ctxDir: string;
let bigCtx: string;
const r = (args: string[], opts: { cwd?: string } = {}) => tsbuild([...args, "--root", root], opts);

beforeAll(async () => {
  dir = await tempDir("tsbuild-outputs-");
  root = join(dir.path, "store");
  ctxDir = join(dir.path, "ctx");
  await mkdir(ctxDir);
  await writeFile(join(ctxDir, "Dockerfile"), "FROM scratch\nCOPY a /a\n");
  await writeFile(join(ctxDir, "a"), "hello\n");
  bigCtx = join(dir.path, "big");
  await mkdir(bigCtx);
  await writeFile(join(bigCtx, "Dockerfile"), "FROM scratch\nCOPY a /a\n");
  await writeFile(join(bigCtx, "a"), Buffer.alloc(300 * 1024, 7));
  for (const [c, t] of [
    [ctxDir, "small:1"],
    [bigCtx, "big:1"],
  ] as const) {
    const res = await r(["build", "-q", "-t", t, c]);
    expect(res.code, res.stderr).toBe(0);
  }
}, 120_000);
afterAll(async () => {
  await dir?.cleanup();
});

function readFifo(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = spawn("cat", [path]);
    const out: Buffer[] = [];
    c.stdout.on("data", (b: Buffer) => out.push(b));
    c.on("error", reject);
    c.on("close", () => resolve(Buffer.concat(out)));
  });
}

describe("output files that are not regular files", () => {
  it("--metadata-file to a char device it made (mknod c 1 3) writes through; the node stays a char device", async () => {
    const dev = join(dir.path, "null");
    await exec("mknod", [dev, "c", "1", "3"]);
    const res = await r(["build", "-q", "--metadata-file", dev, ctxDir]);
    expect(res.code, res.stderr).toBe(0);
    expect((await lstat(dev)).isCharacterDevice()).toBe(true);
    expect(await readFile(dev, "utf8")).toBe("");
  });

  it("save -o FIFO and -o type=docker,dest=FIFO stream the tar to the reader", async () => {
    const fifo = join(dir.path, "fifo");
    await exec("mkfifo", [fifo]);
    for (const args of [
      ["save", "-o", fifo, "small:1"],
      ["build", "-q", "-o", `type=docker,dest=${fifo}`, ctxDir],
    ]) {
      const reading = readFifo(fifo);
      const res = await r(args);
      expect(res.code, res.stderr).toBe(0);
      const tar = await reading;
      expect(tar.length).toBeGreaterThan(1024);
      expect(tar.subarray(257, 262).toString()).toBe("ustar");
      expect((await lstat(fifo)).isFIFO()).toBe(true);
    }
  });

  it("save -o STDOUT-LINK (its own link to /proc/self/fd/1, like /dev/stdout) writes the archive to standard output", async () => {
    // Never the machine's /dev/stdout: code that renames over the target would replace it for everyone.
    const stdoutLink = join(dir.path, "stdout");
    await symlink("/proc/self/fd/1", stdoutLink);
    const res = await new Promise<Buffer>((resolve, reject) => {
      const c = spawn(process.execPath, [join(import.meta.dirname, "../../dist/bundle/bin.js"), "save", "-o", stdoutLink, "small:1", "--root", root]);
      const out: Buffer[] = [];
      c.stdout.on("data", (b: Buffer) => out.push(b));
      c.on("error", reject);
      c.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`exit ${code}`))));
    });
    expect(res.subarray(257, 262).toString()).toBe("ustar");
    expect((await lstat(stdoutLink)).isSymbolicLink()).toBe(true);
  });

  it("a symlink to a regular file stays a link; the file it names gets the archive and keeps its mode", async () => {
    const real = join(dir.path, "real.tar");
    const link = join(dir.path, "link.tar");
    await writeFile(real, "old", { mode: 0o640 });
    await symlink("real.tar", link);
    for (const args of [
      ["save", "-o", link, "small:1"],
      ["build", "-q", "-o", `type=oci,dest=${link}`, ctxDir],
      ["build", "-q", "--metadata-file", link, ctxDir],
    ]) {
      const res = await r(args);
      expect(res.code, res.stderr).toBe(0);
      expect(await readlink(link)).toBe("real.tar");
      expect((await stat(real)).size).toBeGreaterThan(3);
      expect((await stat(real)).mode & 0o777).toBe(0o640);
    }
    expect((await readdir(dir.path)).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });
});

describe("empty or missing -o dest", () => {
  it("is a usage error naming --output for every output type, and writes nothing into the cwd", async () => {
    const cwd = join(dir.path, "cwd");
    await mkdir(cwd);
    await writeFile(join(cwd, "a"), "mine");
    for (const o of [
      "",
      " ",
      "type=local",
      "type=oci",
      "type=docker",
      "type=local,dest=",
      "type=oci,dest=",
      "type=docker,dest=",
      "dest=",
      "type=oci,tar=false",
    ]) {
      const res = await r(["build", "-o", o, ctxDir], { cwd });
      expect(res.code, `-o ${JSON.stringify(o)}: ${res.stderr}`).toBe(2);
      expect(res.stderr).toContain("--output");
      expect(res.stderr).not.toContain("this is a bug");
    }
    expect(await readdir(cwd)).toEqual(["a"]);
    expect(await readFile(join(cwd, "a"), "utf8")).toBe("mine");
  });
});

describe("a full disk (a 64k tmpfs mounted by the test)", () => {
  it("save -o and -o type=docker|oci fail with DISK_FULL naming the file and leave no temp file", async () => {
    const mnt = join(dir.path, "tiny");
    await mkdir(mnt);
    await exec("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]);
    try {
      const f = join(mnt, "out.tar");
      for (const args of [
        ["save", "-o", f, "big:1"],
        ["build", "-q", "-o", `type=docker,dest=${f}`, bigCtx],
        ["build", "-q", "-o", `type=oci,dest=${f},compression=uncompressed`, bigCtx],
      ]) {
        const res = await r(args);
        expect(res.code, res.stderr).toBe(1);
        expect(res.stderr).toContain(`${f}: no space left on the device [DISK_FULL]`);
        expect(res.stderr).not.toContain("this is a bug");
        expect(await readdir(mnt)).toEqual([]);
      }
      const res = await r(["build", "-q", "-o", `type=local,dest=${join(mnt, "rootfs")}`, bigCtx]);
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain("no space left on the device [DISK_FULL]");
      expect(res.stderr).toContain("--output type=local");
    } finally {
      await exec("umount", [mnt]);
    }
  });
});

/** A proxy in front of the registry that holds blob uploads until released. */
async function gateProxy(upstream: number): Promise<{ host: string; held: Promise<void>; release(): void; stop(): Promise<void> }> {
  let release!: () => void;
  const open = new Promise<void>((res) => (release = res));
  let sawUpload!: () => void;
  const held = new Promise<void>((res) => (sawUpload = res));
  const server: Server = createServer((req, res) => {
    const go = () => {
      const up = request({ host: "127.0.0.1", port: upstream, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on("error", () => res.destroy());
      req.pipe(up);
    };
    if (req.method !== "GET" && req.method !== "HEAD" && (req.url ?? "").includes("/blobs/uploads")) {
      sawUpload();
      void open.then(go);
    } else go();
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return { host: `127.0.0.1:${port}`, held, release, stop: () => new Promise((res) => server.close(() => res())) };
}

describe("push holds the store lock", () => {
  let reg: RegistryServer;
  beforeAll(async () => {
    reg = await startRegistry();
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it("rmi + prune --all during a push: prune says the store is busy, the push completes", async () => {
    const gate = await gateProxy(reg.port);
    try {
      const pushRoot = join(dir.path, "push-store");
      const p = (args: string[]) => tsbuild([...args, "--root", pushRoot]);
      expect((await p(["build", "-q", "-t", "victim:1", bigCtx])).code).toBe(0);
      const pushing = p(["push", "victim:1", `${gate.host}/victim:1`]);
      await gate.held;
      const rmi = await p(["rmi", "victim:1"]);
      expect(rmi.code, rmi.stderr).toBe(0);
      const prune = await p(["prune", "--all"]);
      expect(prune.code).toBe(1);
      expect(prune.stderr).toContain("STORE_BUSY");
      gate.release();
      const pushed = await pushing;
      expect(pushed.stderr).not.toContain("NETWORK_ERROR");
      expect(pushed.code, pushed.stderr).toBe(0);
      expect(pushed.stdout).toMatch(/digest: sha256:[0-9a-f]{64}/);
    } finally {
      gate.release();
      await gate.stop();
    }
  }, 60_000);
});

describe("concurrent logins", () => {
  it("20 logins to different registries at once (separate processes) all keep their entry", async () => {
    const servers: Server[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const s = createServer((req, res) => res.writeHead(req.url?.startsWith("/v2/") ? 200 : 404, { "content-type": "application/json" }).end("{}"));
        await new Promise<void>((res) => s.listen(0, "127.0.0.1", res));
        servers.push(s);
      }
      const hosts = servers.map((s) => {
        const a = s.address();
        return `127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
      });
      const cfgDir = join(dir.path, "docker-config");
      const env = { ...process.env, HOME: dir.path, DOCKER_CONFIG: cfgDir };
      const results = await Promise.all(hosts.map((h, i) => tsbuildProcess(["login", "-u", `user${i}`, "--password-stdin", h], { env, input: `pw${i}\n` })));
      for (const res of results) expect(res.code, res.stderr).toBe(0);
      const cfg = JSON.parse(await readFile(join(cfgDir, "config.json"), "utf8")) as { auths: Record<string, { auth: string }> };
      expect(Object.keys(cfg.auths).sort()).toEqual([...hosts].sort());
      hosts.forEach((h, i) => expect(Buffer.from(cfg.auths[h]!.auth, "base64").toString()).toBe(`user${i}:pw${i}`));
      expect((await stat(join(cfgDir, "config.json"))).mode & 0o777).toBe(0o600);
      expect((await readdir(cfgDir)).sort()).toEqual(["config.json"]);
    } finally {
      await Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
    }
  }, 120_000);
});
