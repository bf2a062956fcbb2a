// The sandbox policy, observed from inside a RUN under each executor: devices, /proc and /sys, capabilities, limits,
// mount targets that try to leave the rootfs, secrets on command lines, and processes that try to outlive the step.
// Nothing here writes to a real host device or sysctl: probes either write a value that is already there or only look.
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { ProcessSpec } from "../../src/executor/types.js";
import { makeBusyboxRootfs } from "../helpers/busybox-rootfs.js";
import { captureIO, listContainers, makeExecutor, PATH_ENV, type ExecutorName } from "../helpers/sandbox.js";
import { processesWith as processesOf } from "../helpers/hostile.js";

const EXECUTORS: ExecutorName[] = ["crun", "runc", "bwrap"];

async function processesWith(marker: string): Promise<number[]> {
  return (await processesOf(marker)).map((p) => p.pid);
}

describe.each(EXECUTORS)("%s sandbox", (name) => {
  let base: string;
  let rootfs: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "tsbuild-sandbox-"));
    rootfs = await makeBusyboxRootfs(join(base, "rootfs"));
  });
  afterEach(async () => {
    expect(await listContainers(name, join(base, "state"))).toEqual([]);
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function sh(script: string, spec: Partial<ProcessSpec> = {}, root = rootfs) {
    const io = captureIO();
    const ex = await makeExecutor(name, join(base, "state"));
    const { exitCode } = await ex.run(
      { args: ["/bin/sh", "-c", script], env: [PATH_ENV], cwd: "/", uid: 0, gid: 0, network: "none", ...spec },
      root,
      io,
      new AbortController().signal,
    );
    return { exitCode, out: io.out(), err: io.err() };
  }

  test("a host block device made with mknod cannot be opened; /dev holds only the default nodes", async () => {
    const r = await sh(
      "mknod /loop b 7 0 2>/dev/null; head -c 512 /loop >/dev/null 2>&1 && echo READ-LOOP; " +
        "mknod /dev/vd b 253 0 2>/dev/null; head -c 1 /dev/vd >/dev/null 2>&1 && echo READ-DISK; " +
        "mknod /dev/t0 c 4 0 2>/dev/null; echo x 2>/dev/null > /dev/t0 && echo WROTE-TTY; rm -f /loop; ls /dev",
    );
    expect(r.out).not.toMatch(/READ-LOOP|READ-DISK|WROTE-TTY/);
    const devs = r.out.trim().split(/\s+/);
    for (const d of ["null", "zero", "urandom", "shm"]) expect(devs).toContain(d);
    for (const d of devs)
      expect([
        "console",
        "core",
        "fd",
        "full",
        "mqueue",
        "null",
        "ptmx",
        "pts",
        "random",
        "shm",
        "stderr",
        "stdin",
        "stdout",
        "t0",
        "tty",
        "urandom",
        "vd",
        "zero",
      ]).toContain(d);
  });

  test("/dev/null, zero and urandom work and are the container's own nodes, not the host's", async () => {
    const host = await stat("/dev/null");
    const r = await sh("echo hi > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && stat -c '%d %i' /dev/null");
    expect(r.exitCode, r.err).toBe(0);
    const [zero, urandom, devIno] = r.out.trim().split("\n");
    expect([zero?.trim(), urandom?.trim()]).toEqual(["4", "4"]);
    expect(devIno).not.toBe(`${host.dev} ${host.ino}`);
  });

  test("/proc/sys and /proc/sysrq-trigger are read-only; kcore, keys and timer_list are masked; /sys is read-only", async () => {
    // Writing back the value already there: a failure of the sandbox would still leave the host unchanged.
    const burst = (await readFile("/proc/sys/kernel/printk_ratelimit_burst", "utf8")).trim();
    const r = await sh(
      `echo ${burst} > /proc/sys/kernel/printk_ratelimit_burst 2>/dev/null && echo WROTE-SYSCTL; ` +
        "cat /proc/sys/kernel/core_pattern > /tmp/cp && cat /tmp/cp > /proc/sys/kernel/core_pattern 2>/dev/null && echo WROTE-CORE; " +
        "echo h > /proc/sysrq-trigger 2>/dev/null && echo WROTE-SYSRQ; " +
        "echo kcore=$(head -c 16 /proc/kcore 2>/dev/null | wc -c) keys=$(cat /proc/keys 2>/dev/null | wc -c) timers=$(cat /proc/timer_list 2>/dev/null | wc -c); " +
        "echo firmware=$(ls /sys/firmware 2>/dev/null | wc -l); " +
        "echo 1 > /sys/kernel/mm/ksm/run 2>/dev/null && echo WROTE-SYSFS; rm -f /tmp/cp",
    );
    expect(r.out).not.toMatch(/WROTE-/);
    expect(r.out).toContain("kcore=0 keys=0 timers=0");
    expect(r.out).toContain("firmware=0");
    expect((await readFile("/proc/sys/kernel/printk_ratelimit_burst", "utf8")).trim()).toBe(burst);
  });

  test("Docker's seccomp profile is in force: Seccomp: 2, unshare -Urm and clone of a user namespace fail", async () => {
    const r = await sh("grep Seccomp: /proc/self/status; unshare -Urm true 2>/dev/null && echo UNSHARED-USER; echo ok");
    expect(r.out).toMatch(/^Seccomp:\s+2$/m);
    expect(r.out).not.toContain("UNSHARED-USER");
    expect(r.out).toContain("ok");
  });

  test("root has exactly Docker's capabilities, in every set; mount and unshare fail", async () => {
    const r = await sh(
      "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status; grep NoNewPrivs /proc/self/status; mount -t tmpfs t /mnt 2>/dev/null && echo MOUNTED; unshare -m true 2>/dev/null && echo UNSHARED; true",
    );
    expect(r.out).toMatch(/CapEff:\s+0+a80425fb/);
    // bwrap as real root cannot shrink the bounding set itself: the host's setpriv does it inside the sandbox.
    expect(r.out).toMatch(/CapBnd:\s+0+a80425fb/);
    if (name === "bwrap") expect(r.out).toMatch(/NoNewPrivs:\s+1/);
    expect(r.out).not.toMatch(/MOUNTED|UNSHARED/);
  });

  test("a fork bomb hits the pids limit and the step ends; nothing it started survives", async () => {
    const marker = `1000.${randomBytes(3).readUIntBE(0, 3)}`;
    const t0 = Date.now();
    const r = await sh(`i=0; while [ $i -lt 1500 ]; do sleep ${marker} & i=$((i+1)); done 2>/dev/null; echo started=$i; exit 3`);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(r.exitCode).not.toBe(0);
    expect(await processesWith(`sleep ${marker}`)).toEqual([]);
  });

  test("a background process ends with its step", async () => {
    const marker = `1000.${randomBytes(3).readUIntBE(0, 3)}`;
    const r = await sh(`sleep ${marker} & echo started`);
    expect(r.exitCode).toBe(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(await processesWith(`sleep ${marker}`)).toEqual([]);
  });

  test("env values (secrets) never appear on a host command line while the RUN runs", async () => {
    const secret = `s3cr3t-${randomBytes(8).toString("hex")}`;
    const running = sh("sleep 1; echo done", { env: [PATH_ENV, `TOKEN=${secret}`] });
    await new Promise((res) => setTimeout(res, 500));
    const seen = await processesWith(secret);
    await running;
    expect(seen).toEqual([]);
  });

  test("mount targets and /etc/hosts that are symlinks out of the rootfs stay inside it", async () => {
    const tag = randomBytes(6).toString("hex");
    const evil = await makeBusyboxRootfs(join(base, `evil-${tag}`));
    await symlink("/oldroot/tmp", join(evil, "c"));
    await rm(join(evil, "etc/hosts"), { force: true });
    await symlink(`/oldroot/tmp/created-hosts-${tag}`, join(evil, "etc/hosts"));
    await mkdir(join(base, "cache"), { recursive: true });
    const r = await sh(
      "cat /etc/hosts >/dev/null; ls /c/created-on-host-" + tag,
      {
        extraMounts: [
          { source: "", destination: `/c/created-on-host-${tag}/sub`, readonly: false, type: "tmpfs" },
          { source: join(base, "cache"), destination: `/../../tmp/created-dots-${tag}`, readonly: false },
        ],
      },
      evil,
    );
    expect(r.exitCode, r.err).toBe(0);
    for (const p of [`/tmp/created-on-host-${tag}`, `/tmp/created-hosts-${tag}`, `/tmp/created-dots-${tag}`, `/oldroot`]) {
      await expect(lstat(p)).rejects.toMatchObject({ code: "ENOENT" });
    }
    await expect(lstat(join(evil, "oldroot/tmp", `created-on-host-${tag}`, "sub"))).resolves.toBeTruthy();
  });
});
