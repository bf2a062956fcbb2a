import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { AbortError, EnvironmentError } from "../../src/errors.js";
import { buildRuntimeConfig, DEFAULT_CAPABILITIES, nofileLimit, runtimeConfigJson } from "../../src/executor/runtime-spec.js";
import { selectExecutor } from "../../src/executor/select-executor.js";
import type { ProcessSpec } from "../../src/executor/types.js";
import { makeBusyboxRootfs } from "../helpers/busybox-rootfs.js";
import { captureIO, listContainers, makeExecutor, PATH_ENV, type ExecutorName } from "../helpers/sandbox.js";

const EXECUTORS: ExecutorName[] = ["crun", "runc", "bwrap"];

describe.each(EXECUTORS)("%s executor", (name) => {
  let base: string;
  let rootfs: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "tsbuild-exec-"));
    rootfs = await makeBusyboxRootfs(join(base, "rootfs"));
  });
  afterEach(async () => {
    expect(await listContainers(name, join(base, "state"))).toEqual([]);
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function sh(script: string, spec: Partial<ProcessSpec> = {}, signal = new AbortController().signal) {
    const io = captureIO();
    const ex = await makeExecutor(name, join(base, "state"));
    const { exitCode } = await ex.run(
      { args: ["/bin/sh", "-c", script], env: [PATH_ENV], cwd: "/", uid: 0, gid: 0, network: "default", ...spec },
      rootfs,
      io,
      signal,
    );
    return { exitCode, out: io.out(), err: io.err() };
  }

  test("exit code, stdout and stderr", async () => {
    expect(await sh("echo out; echo err >&2; exit 7")).toEqual({ exitCode: 7, out: "out\n", err: "err\n" });
  });

  test("network none has only lo; default has its own namespace with the user-mode network's tap; host shares the host's", async () => {
    const ifaces = (text: string) =>
      text
        .split("\n")
        .slice(2)
        .map((l) => l.split(":")[0]?.trim())
        // veth pairs come and go with other containers on the host (a docker daemon, say) between the two reads.
        .filter((s): s is string => !!s && !s.startsWith("veth"))
        .sort();
    expect(ifaces((await sh("cat /proc/net/dev", { network: "none" })).out)).toEqual(["lo"]);
    expect(ifaces((await sh("cat /proc/net/dev", { network: "default" })).out)).toEqual(["lo", "tap0"]);
    const host = ifaces(await readFile("/proc/net/dev", "utf8"));
    expect(ifaces((await sh("cat /proc/net/dev", { network: "host" })).out)).toEqual(host);
  });

  test("hostname, /etc/hosts and /etc/resolv.conf", async () => {
    const r = await sh("hostname; cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo x > /etc/hosts || echo ro", { hostname: "box" });
    const [hn, rest] = [r.out.split("\n")[0], r.out.split("\n").slice(1).join("\n")];
    expect(hn).toBe("box");
    expect(rest).toContain("127.0.0.1\tlocalhost box");
    // The default network's resolver is slirp4netns's DNS forwarder.
    expect(rest).toContain("---\nnameserver 10.0.2.3\n");
    expect(r.out.trimEnd().endsWith("ro")).toBe(true);
  });

  test("env, cwd, user; non-root has no effective capabilities, root has Docker's set", async () => {
    const r = await sh('echo "$A|$(pwd)|$(id -u):$(id -g)"; grep CapEff /proc/self/status', { env: [PATH_ENV, "A=1 2"], cwd: "/tmp", uid: 1000, gid: 1000 });
    expect(r.out).toMatch(/^1 2\|\/tmp\|1000:1000\nCapEff:\s+0+\n$/);
    const root = await sh("grep CapEff /proc/self/status");
    expect(root.out).toMatch(/CapEff:\s+0+a80425fb/);
  });

  test("additional gids", async () => {
    expect((await sh("id -G", { uid: 1000, gid: 1000, additionalGids: [10] })).out.trim().split(" ").sort()).toEqual(["10", "1000"]);
  });

  test("abort kills a long process quickly", async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    await expect(sh("sleep 100", {}, ac.signal)).rejects.toBeInstanceOf(AbortError);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test("an already-aborted signal starts nothing", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(sh("true", {}, ac.signal)).rejects.toBeInstanceOf(AbortError);
  });
});

describe("runtime spec", () => {
  const spec: ProcessSpec = { args: ["true"], env: [], cwd: "/", uid: 0, gid: 0, network: "default" };
  const files = { hosts: "/b/hosts", resolvConf: "/b/resolv.conf" };
  const o = { files, limits: { pids: 1024 }, nofile: 1024 };

  test("Docker's defaults; a network namespace unless host; device rules and limits", () => {
    const c = buildRuntimeConfig(spec, "/r", o);
    expect(c.ociVersion).toBe("1.0.2");
    expect(c.process.capabilities.bounding).toEqual([...DEFAULT_CAPABILITIES]);
    expect(c.process.capabilities.effective).toHaveLength(14);
    expect(c.process.rlimits).toEqual([{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
    expect(c.linux.namespaces).toEqual([{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }]);
    expect(buildRuntimeConfig(spec, "/r", { ...o, netnsPath: "/proc/1/fd/9" }).linux.namespaces).toContainEqual({ type: "network", path: "/proc/1/fd/9" });
    expect(buildRuntimeConfig({ ...spec, network: "host" }, "/r", o).linux.namespaces.map((n) => n.type)).not.toContain("network");
    expect(c.mounts.find((m) => m.destination === "/etc/hosts")).toMatchObject({ source: "/b/hosts", options: expect.arrayContaining(["ro"]) });
    expect(buildRuntimeConfig({ ...spec, uid: 1000 }, "/r", o).process.capabilities.effective).toEqual([]);
    // A bare KEY in the image's Env is KEY= for the process, as bwrap gives it (BuildKit's reading).
    expect(buildRuntimeConfig({ ...spec, env: ["BARE", "=x", "A=1"] }, "/r", o).process.env).toEqual(["BARE=", "A=1"]);
    expect(c.linux.resources.devices[0]).toEqual({ allow: false, access: "rwm" });
    expect(c.linux.resources.devices).toContainEqual({ allow: true, type: "c", major: 1, minor: 3, access: "rwm" });
    expect(c.linux.resources.devices.filter((d) => d.allow && d.type === "b" && d.access !== "m")).toEqual([]);
    expect(c.linux.resources.pids).toEqual({ limit: 1024 });
    expect(c.linux.readonlyPaths).toContain("/proc/sys");
  });

  test("--ulimit values replace the default of their name; unlimited is RLIM_INFINITY in config.json; --shm-size", () => {
    const limits = {
      pids: 1024,
      shmBytes: 1 << 20,
      rlimits: [
        { name: "nofile" as const, soft: 10, hard: 20 },
        { name: "core" as const, soft: 0, hard: Infinity },
      ],
    };
    const c = buildRuntimeConfig(spec, "/r", { ...o, limits });
    expect(c.process.rlimits).toEqual([
      { type: "RLIMIT_NOFILE", hard: 20, soft: 10 },
      { type: "RLIMIT_CORE", hard: Infinity, soft: 0 },
    ]);
    expect(runtimeConfigJson(c)).toContain('{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":0}');
    expect(c.mounts.find((m) => m.destination === "/dev/shm")?.options).toContain(`size=${1 << 20}`);
    expect(buildRuntimeConfig(spec, "/r", o).mounts.find((m) => m.destination === "/dev/shm")?.options).toContain(`size=${64 << 20}`);
  });

  test("crun gets the compiled seccomp program in run.oci.seccomp_bpf_data, linux.seccomp stays; none for insecure", () => {
    const seccomp = { defaultAction: "SCMP_ACT_ERRNO", syscalls: [] };
    const bpf = Buffer.from([6, 0, 0, 0, 0, 0, 0xff, 0x7f]);
    const c = buildRuntimeConfig(spec, "/r", { ...o, seccomp, seccompBpf: bpf });
    expect(c.annotations).toEqual({ "run.oci.seccomp_bpf_data": bpf.toString("base64") });
    expect(c.linux.seccomp).toEqual(seccomp);
    expect(buildRuntimeConfig(spec, "/r", { ...o, seccomp }).annotations).toBeUndefined();
    expect(buildRuntimeConfig({ ...spec, security: "insecure" }, "/r", { ...o, seccomp, seccompBpf: bpf }).annotations).toBeUndefined();
  });

  test("RLIMIT_NOFILE is clamped to our hard limit", () => {
    expect(nofileLimit("Max open files            20000                20000                files\n")).toBe(20000);
    expect(nofileLimit("Max open files            1024                 unlimited            files\n")).toBe(1048576);
  });
});

describe("selectExecutor", () => {
  test("auto prefers crun; explicit choices", async () => {
    expect((await selectExecutor()).name).toBe("crun");
    expect((await selectExecutor("runc")).name).toBe("runc");
    expect((await selectExecutor("bwrap")).name).toBe("bwrap");
  });

  test("no runtime on PATH is an EnvironmentError naming the package", async () => {
    const saved = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      const err = await selectExecutor().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EnvironmentError);
      expect(err).toMatchObject({ code: "NO_RUNTIME", message: expect.stringContaining("apt-get install -y crun") });
      await expect(selectExecutor("bwrap")).rejects.toMatchObject({ code: "NO_RUNTIME", message: expect.stringContaining("bubblewrap") });
    } finally {
      process.env.PATH = saved;
    }
  });
});
