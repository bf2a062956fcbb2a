// RUN's default network, for real: a fresh netns behind slirp4netns that cannot reach the host's 127.0.0.1 but does
// reach other hosts (a veth-connected netns this test creates), and leaves nothing behind — not even after kill -9.
// Traffic only ever goes to 127.0.0.x and to the test's own namespaces (198.18.0.0/15, the benchmarking range).
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createRunNetwork, probeUserNet, RUN_NETWORK_RESOLV_CONF } from "../../src/executor/run-network.js";
import { isTsbuildError } from "../../src/errors.js";
import { requireTool } from "../helpers/tools.js";

const run = promisify(execFile);
const MODULE = fileURLToPath(new URL("../../src/executor/run-network.ts", import.meta.url));
let scratch: string;

async function need(bin: string, pkg: string): Promise<void> {
  try {
    await run("sh", ["-c", `command -v ${bin}`]);
  } catch {
    throw new Error(`${bin} is not installed: apt-get install -y ${pkg} (see .ci/run)`);
  }
}

beforeAll(async () => {
  await need("slirp4netns", "slirp4netns");
  await need("ip", "iproute2");
  await need("nsenter", "util-linux");
  await need("timeout", "coreutils");
  await requireTool("busybox");
  scratch = await mkdtemp(join(tmpdir(), "tsbuild-netns-test-"));
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Runs `args` inside the RUN's network namespace; never rejects. busybox wget -T segfaults here, so `timeout` bounds it. */
function inNetns(nsPath: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("nsenter", [`--net=${nsPath}`, "timeout", "-s", "KILL", "5", ...args], (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const wget = (nsPath: string, url: string) => inNetns(nsPath, ["busybox", "wget", "-q", "-O-", url]);

function httpServer(host: string): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve) => {
    // resume(): read the request to EOF, or the socket never sees the client's FIN and close() waits forever.
    const s = net.createServer((c) => c.resume().end("HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nsecret"));
    s.listen(0, host, () => resolve({ port: (s.address() as net.AddressInfo).port, close: () => new Promise((r) => s.close(() => r())) }));
  });
}

/** "net:[inode]" of the namespace behind `nsPath`. */
const nsId = (nsPath: string) => readlink(nsPath);

/** Every reference to namespace `id` on this host: processes in it, fds onto it, nsfs mounts of it. */
async function referencesTo(id: string): Promise<string[]> {
  const found: string[] = [];
  const ino = id.replace(/^net:\[(\d+)\]$/, "$1");
  for (const pid of (await readdir("/proc")).filter((n) => /^\d+$/.test(n))) {
    if ((await readlink(`/proc/${pid}/ns/net`).catch(() => "")) === id) found.push(`process ${pid}`);
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === id) found.push(`fd ${pid}/${fd}`);
    }
  }
  const mounts = await readFile("/proc/self/mountinfo", "utf8");
  for (const line of mounts.split("\n")) if (line.includes(`net:[${ino}]`)) found.push(`mount ${line}`);
  return found;
}

/** slirp4netns processes serving `nsPath` (alive, not zombies). */
async function slirpPids(nsPath: string): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of (await readdir("/proc")).filter((n) => /^\d+$/.test(n))) {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (!cmd[0]?.endsWith("slirp4netns") || !cmd.includes(nsPath)) continue;
    if (await isAlive(Number(pid))) pids.push(Number(pid));
  }
  return pids;
}

/** Live slirp4netns children of this process. */
async function ourSlirps(): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of (await readdir("/proc")).filter((n) => /^\d+$/.test(n))) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    if (/^Name:\s+slirp4netns$/m.test(status) && new RegExp(`^PPid:\\s+${process.pid}$`, "m").test(status) && (await isAlive(Number(pid))))
      pids.push(Number(pid));
  }
  return pids;
}

/** Our fds that hold a network namespace. */
async function ourNetnsFds(): Promise<string[]> {
  const held: string[] = [];
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target.startsWith("net:[")) held.push(`${fd} -> ${target}`);
  }
  return held;
}

async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return stat !== "" && state !== "Z" && state !== "X";
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("createRunNetwork", () => {
  test("probeUserNet finds slirp4netns", async () => {
    expect(await probeUserNet()).toEqual({ ok: true, tool: expect.stringMatching(/slirp4netns$/) });
  });

  test("the host's 127.0.0.1 is unreachable, via 127.0.0.1 and via the gateway 10.0.2.2; lo is up inside", async () => {
    const server = await httpServer("127.0.0.1");
    const netw = await createRunNetwork({ signal: new AbortController().signal });
    try {
      expect(netw.resolvConf).toBe("nameserver 10.0.2.3\n");
      expect(RUN_NETWORK_RESOLV_CONF).toBe(netw.resolvConf);
      // The server works (from the host) ...
      const host = await new Promise<string>((resolve, reject) =>
        execFile("timeout", ["5", "busybox", "wget", "-q", "-O-", `http://127.0.0.1:${server.port}/`], (e, out) => (e ? reject(e) : resolve(out))),
      );
      expect(host).toBe("secret");
      // ... but not from the RUN's namespace, by either address.
      const direct = await wget(netw.nsPath, `http://127.0.0.1:${server.port}/`);
      expect(direct.code).not.toBe(0);
      expect(direct.stdout).not.toContain("secret");
      const viaGateway = await wget(netw.nsPath, `http://10.0.2.2:${server.port}/`);
      expect(viaGateway.code).not.toBe(0);
      expect(viaGateway.stdout).not.toContain("secret");

      const lo = await inNetns(netw.nsPath, ["busybox", "ping", "-c1", "-W1", "127.0.0.1"]);
      expect(lo.code, lo.stderr).toBe(0);
      const addrs = await inNetns(netw.nsPath, ["ip", "-o", "-4", "addr"]);
      expect(addrs.stdout).toMatch(/tap0\s+inet 10\.0\.2\.100\/24/);
    } finally {
      await netw.release();
      await server.close();
    }
  });

  test("other hosts are reachable through slirp (a netns of the test's own on a 198.18.x.0/30 veth)", async () => {
    const tag = randomBytes(3).toString("hex");
    const octet = 16 + (parseInt(tag, 16) % 200);
    const ns = `tsb-test-${tag}`;
    const [vh, vn] = [`tsbh${tag}`, `tsbn${tag}`];
    const [hostIp, nsIp] = [`198.18.${octet}.1`, `198.18.${octet}.2`];
    const www = join(scratch, `www-${tag}`);
    await mkdir(www);
    await writeFile(join(www, "index.html"), "hello from the far side\n");
    let httpd: ReturnType<typeof spawn> | undefined;
    const netw = await createRunNetwork({ signal: new AbortController().signal });
    try {
      await run("ip", ["netns", "add", ns]);
      await run("ip", ["link", "add", vh, "type", "veth", "peer", "name", vn]);
      await run("ip", ["link", "set", vn, "netns", ns]);
      await run("ip", ["addr", "add", `${hostIp}/30`, "dev", vh]);
      await run("ip", ["link", "set", vh, "up"]);
      await run("ip", ["-n", ns, "addr", "add", `${nsIp}/30`, "dev", vn]);
      await run("ip", ["-n", ns, "link", "set", vn, "up"]);
      await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      httpd = spawn("ip", ["netns", "exec", ns, "busybox", "httpd", "-f", "-p", `${nsIp}:8080`, "-h", www], { stdio: "ignore" });
      let got = { code: -1, stdout: "", stderr: "" };
      await until(async () => {
        got = await wget(netw.nsPath, `http://${nsIp}:8080/`);
        return got.code === 0;
      }, 3000);
      expect(got.stderr).toBe("");
      expect(got.stdout).toBe("hello from the far side\n");
    } finally {
      await netw.release();
      httpd?.kill("SIGKILL");
      await run("ip", ["netns", "del", ns]).catch(() => undefined);
      await run("ip", ["link", "del", vh]).catch(() => undefined);
    }
  });

  test("release() stops slirp4netns and drops the namespace; it is idempotent", async () => {
    const netw = await createRunNetwork({ signal: new AbortController().signal });
    const id = await nsId(netw.nsPath);
    expect(await slirpPids(netw.nsPath)).toHaveLength(1);
    expect((await referencesTo(id)).some((r) => r.startsWith(`fd ${process.pid}/`))).toBe(true);
    await Promise.all([netw.release(), netw.release()]);
    await netw.release();
    expect(await slirpPids(netw.nsPath)).toEqual([]);
    expect(await referencesTo(id)).toEqual([]);
  });

  test("an aborted signal creates nothing", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(createRunNetwork({ signal: ac.signal })).rejects.toMatchObject({ code: "CANCELLED" });
    // Aborting mid-way (after the namespace, while slirp starts) also cleans up.
    const ac2 = new AbortController();
    const p = createRunNetwork({ signal: ac2.signal });
    setTimeout(() => ac2.abort(), 3);
    const r = await p.then(
      async (n) => (await n.release(), "finished first"),
      (e: unknown) => (isTsbuildError(e) ? e.code : String(e)),
    );
    expect(["CANCELLED", "finished first"]).toContain(r);
    expect(await ourSlirps()).toEqual([]);
    expect(await ourNetnsFds()).toEqual([]);
  });

  test("without slirp4netns on PATH: a clear error naming the package, and nothing left behind", async () => {
    const bin = join(scratch, "bin-no-slirp");
    await mkdir(bin);
    for (const tool of ["unshare", "sh"]) {
      const { stdout } = await run("sh", ["-c", `command -v ${tool}`]);
      await symlink(stdout.trim(), join(bin, tool));
    }
    const path = process.env.PATH;
    process.env.PATH = bin;
    try {
      expect(await probeUserNet()).toMatchObject({ ok: false, hint: "apt-get install -y slirp4netns" });
      const err = await createRunNetwork({ signal: new AbortController().signal }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "NO_SLIRP4NETNS", hint: expect.stringContaining("apt-get install -y slirp4netns") });
    } finally {
      process.env.PATH = path;
    }
    expect(await ourNetnsFds()).toEqual([]);
  });

  test("slirp4netns failing to start: its own message, and nothing left behind", async () => {
    // The real slirp4netns, with an MTU it rejects appended after ours (the last --mtu wins).
    const bin = join(scratch, "bin-bad-slirp");
    await mkdir(bin);
    const { stdout: real } = await run("sh", ["-c", "command -v slirp4netns"]);
    await writeFile(join(bin, "slirp4netns"), `#!/bin/sh\nexec ${real.trim()} "$@" --mtu=70000\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const t0 = Date.now();
      const err = await createRunNetwork({ signal: new AbortController().signal }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "SLIRP_FAILED", message: expect.stringContaining("MTU must be a positive integer") });
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      process.env.PATH = path;
    }
    expect(await ourSlirps()).toEqual([]);
    expect(await ourNetnsFds()).toEqual([]);
  });

  test("kill -9 of the holder: slirp4netns exits by itself within ~1 s and the namespace is gone", async () => {
    const child = await bundleChild(
      `const n = await createRunNetwork({ signal: new AbortController().signal });
       const { readlink } = await import("node:fs/promises");
       console.log(JSON.stringify({ nsPath: n.nsPath, id: await readlink(n.nsPath) }));
       setInterval(() => {}, 1000);`,
    );
    const proc = spawn(process.execPath, [child], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        proc.stdout.once("data", (c: Buffer) => resolve(c.toString()));
        proc.once("exit", (code) => reject(new Error(`child exited ${code} before creating the network`)));
      });
      const { nsPath, id } = JSON.parse(line) as { nsPath: string; id: string };
      const [slirp] = await slirpPids(nsPath);
      expect(slirp).toBeGreaterThan(0);
      proc.kill("SIGKILL");
      const t0 = Date.now();
      expect(await until(async () => !(await isAlive(slirp as number)), 1500)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(await until(async () => (await referencesTo(id)).length === 0, 1000)).toBe(true);
    } finally {
      proc.kill("SIGKILL");
    }
  });

  test("DNS through 10.0.2.3 works when the host's resolver is on loopback (systemd-resolved), and opens no other port there", async () => {
    // slirp4netns reads the host's /etc/resolv.conf; give the child holding the network one naming 127.0.0.77.
    const resolv = join(scratch, "resolv.loopback");
    await writeFile(resolv, "nameserver 127.0.0.77\n");
    const dns = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => dns.bind(53, "127.0.0.77", () => resolve()));
    dns.on("message", (msg, peer) => dns.send(fakeAnswer(msg), peer.port, peer.address));
    const other = await httpServer("127.0.0.77");
    const child = await bundleChild(
      `const n = await createRunNetwork({ signal: new AbortController().signal });
       console.log(JSON.stringify({ nsPath: n.nsPath }));
       process.stdin.on("end", async () => { await n.release(); process.exit(0); }).resume();`,
    );
    const proc = spawn(
      "unshare",
      ["--mount", "--propagation", "private", "--", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$1" "$2"`, resolv, process.execPath, child],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        proc.stdout.once("data", (c: Buffer) => resolve(c.toString()));
        proc.once("exit", (code) => reject(new Error(`child exited ${code} before creating the network`)));
      });
      const { nsPath } = JSON.parse(line) as { nsPath: string };
      const lookup = await inNetns(nsPath, ["busybox", "nslookup", "-type=a", "build.test", "10.0.2.3"]);
      expect(lookup.stdout).toContain("198.18.9.9");
      const tcp = await wget(nsPath, `http://10.0.2.3:${other.port}/`);
      expect(tcp.code).not.toBe(0);
      expect(tcp.stdout).not.toContain("secret");
    } finally {
      proc.stdin.end();
      await new Promise((r) => proc.once("exit", r));
      dns.close();
      await other.close();
    }
  });
});

/** A node script (bundled with esbuild) that runs `body` with createRunNetwork in scope. */
async function bundleChild(body: string): Promise<string> {
  const dir = await mkdtemp(join(scratch, "child-"));
  const entry = join(dir, "child.ts");
  await writeFile(entry, `import { createRunNetwork } from ${JSON.stringify(MODULE)};\n${body}\n`);
  const out = join(dir, "child.mjs");
  await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "node", target: "node20", outfile: out, logLevel: "warning" });
  return out;
}

/** A DNS reply to `query` with one A record, 198.18.9.9 (AAAA and others: no answers). */
function fakeAnswer(query: Buffer): Buffer {
  const qEnd = 12 + query.subarray(12).indexOf(0) + 5;
  const question = query.subarray(12, qEnd);
  const isA = question.readUInt16BE(question.length - 4) === 1;
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8180, 2); // response, recursion desired + available, no error
  header.writeUInt16BE(isA ? 1 : 0, 6);
  header.writeUInt32BE(0, 8);
  const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 9, 9]);
  return Buffer.concat([header, question, ...(isA ? [answer] : [])]);
}
