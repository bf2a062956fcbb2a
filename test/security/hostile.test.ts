// The acceptance suite of the sandbox-hardening issue: hostile Dockerfiles, contexts and archives, each tried under
// every executor. Every case states what must hold once the sandbox is fixed (Docker's defaults as reference), so
// some fail on code that predates the fixes. After every build the host is checked: victim files, mounts, stray
// processes, paths created outside the store, /dev/null, sysctls (read only, never written by this suite).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { randomInt } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { requireTool } from "../helpers/tools.js";
import {
  crashSigns,
  deviceNodesUnder,
  filesContaining,
  makeVictim,
  ociLayoutEntries,
  processesWith,
  readOrUndefined,
  readlinkOrUndefined,
  runCli,
  startHostWatch,
  startTokenServer,
  tarBuffer,
  unblockFifo,
  uniqueSuffix,
  writeDockerArchive,
  type BuildRun,
  type HostWatch,
  type TokenServer,
  type Victim,
  type Violation,
  type ViolationKind,
} from "../helpers/hostile.js";

const run = promisify(execFile);

const EXECUTORS = ["crun", "runc", "bwrap"] as const;
type ExecutorName = (typeof EXECUTORS)[number];

const S = uniqueSuffix();
/** The unique argument of every process a build starts in the background: `sleep 1000.NNNN`. */
const MARK = `1000.${1000 + randomInt(9000)}`;
const CREATED = `created-on-host-${S}`;
const SHM = `hostile-shm-${S}`;
const MARKER_FILE = `hostile-marker-${S}`;
const SECRET_ENV = `HOSTILE_SECRET_${S}`;
/** Docker's default capability set as /proc/<pid>/status prints it. */
const DOCKER_CAPS = "00000000a80425fb";
/** What Docker's /dev holds (runc/crun also add the `core` → /proc/kcore symlink, as Docker does). */
const ALLOWED_DEV = new Set([
  "null",
  "zero",
  "full",
  "random",
  "urandom",
  "tty",
  "console",
  "ptmx",
  "pts",
  "shm",
  "mqueue",
  "fd",
  "stdin",
  "stdout",
  "stderr",
  "core",
]);

let work: string;
let victim: Victim;
let watch: HostWatch;
let server: TokenServer;
let busyboxTar: string;
let busyboxSource: string | undefined;
let devImageTar: string;
let hostDisk: { major: number; minor: number };

interface Built extends BuildRun {
  violations: Violation[];
  crash: string[];
}

function only(b: Built, ...kinds: ViolationKind[]): Violation[] {
  return b.violations.filter((v) => kinds.includes(v.kind));
}

/** No crash, and the host is exactly as before the build. */
function expectSafe(b: Built): void {
  expect(b.crash, b.output).toEqual([]);
  expect(b.violations, b.output).toEqual([]);
}

/** The build failed with a user-facing error (an `error:` line), not a crash. */
function expectCleanFailure(b: Built): void {
  expect(b.code, b.output).not.toBe(0);
  expect(b.output).toMatch(/^error: /m);
  expect(b.crash, b.output).toEqual([]);
}

const rootOf = (executor: ExecutorName) => join(work, `store-${executor}`);

/** A fresh context dir with these regular files. */
async function context(executor: ExecutorName, name: string, files: Record<string, string> = {}): Promise<string> {
  const dir = join(work, `ctx-${executor}-${name}`);
  await mkdir(dir, { recursive: true });
  for (const [f, body] of Object.entries(files)) {
    await mkdir(join(dir, f, ".."), { recursive: true });
    await writeFile(join(dir, f), body);
  }
  return dir;
}

interface BuildOptions {
  extra?: string[];
  timeoutMs?: number;
  onTimeout?: () => Promise<void>;
  /** Runs while the build does; gets a function telling whether the build has finished. */
  during?: (finished: () => boolean) => Promise<void>;
}

async function build(executor: ExecutorName, ctx: string, dockerfile: string, opts: BuildOptions = {}): Promise<Built> {
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  let finished = false;
  const running = runCli(["build", "--progress=plain", "--no-cache", "--executor", executor, "--root", rootOf(executor), ...(opts.extra ?? []), ctx], {
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.onTimeout ? { onTimeout: opts.onTimeout } : {}),
  }).finally(() => {
    finished = true;
  });
  const [res] = await Promise.all([running, opts.during?.(() => finished)]);
  return { ...res, violations: await watch.check(), crash: crashSigns(res.output) };
}

/** The probe script of the shared build: each check prints `PROBE <name> <value>`; it never fails the step. */
function probeScript(): string {
  return `
p() { echo "PROBE $1 $2"; }
ok() { if "$@" >/dev/null 2>&1; then echo ok; else echo fail; fi; }
# block devices: mknod may succeed (Docker allows it), opening the node must not
for spec in "loop0 7 0" "dm0 253 0" "sda 8 0" "nvme0 259 0" "hostdisk ${hostDisk.major} ${hostDisk.minor}"; do
  set -- $spec
  rm -f /d-$1
  p mknod-$1 "$(ok mknod /d-$1 b $2 $3)"
  if [ -b /d-$1 ]; then p read-$1 "$(ok head -c 512 /d-$1)"; else p read-$1 fail; fi
  rm -f /d-$1
done
rm -f /t
p mknod-tty0 "$(ok mknod /t c 4 0)"
if [ -c /t ]; then p write-tty0 "$(ok sh -c 'echo x > /t')"; else p write-tty0 fail; fi
rm -f /t
p dev-list "$(ls /dev | tr '\\n' ' ')"
p devnull-write "$(ok sh -c 'echo hi > /dev/null')"
p urandom-bytes "$(head -c 4 /dev/urandom | wc -c)"
p zero-bytes "$(head -c 4 /dev/zero | wc -c)"
# sysctls: write the value they already have, so even a sandbox that lets it through changes nothing
v=$(cat /proc/sys/kernel/printk_ratelimit_burst)
p sysctl-printk "$(ok sh -c "echo '$v' > /proc/sys/kernel/printk_ratelimit_burst")"
v=$(cat /proc/sys/kernel/core_pattern)
p sysctl-core-pattern "$(ok sh -c "echo '$v' > /proc/sys/kernel/core_pattern")"
p sysrq "$(ok sh -c 'echo h > /proc/sysrq-trigger')"
p kcore-bytes "$(head -c 16 /proc/kcore 2>/dev/null | wc -c)"
p keys-bytes "$(cat /proc/keys 2>/dev/null | wc -c)"
p timer-list-bytes "$(cat /proc/timer_list 2>/dev/null | wc -c)"
p sys-firmware-entries "$(ls -A /sys/firmware 2>/dev/null | wc -l)"
v=$(cat /sys/kernel/mm/ksm/run)
p sysfs-write "$(ok sh -c "echo '$v' > /sys/kernel/mm/ksm/run")"
p seccomp "$(grep Seccomp: /proc/self/status | cut -f2)"
p unshare-userns "$(ok unshare -Urm true)"
mkdir -p /mnt
p mount-tmpfs "$(ok mount -t tmpfs t /mnt)"
umount /mnt 2>/dev/null
p capeff-root "$(grep CapEff: /proc/self/status | cut -f2)"
p capbnd-root "$(grep CapBnd: /proc/self/status | cut -f2)"
p chroot-proc1 "$(chroot /proc/1/root ls / 2>/dev/null | tr '\\n' ' ')"
p proc1-root "$(ls /proc/1/root/ 2>/dev/null | tr '\\n' ' ')"
p mountinfo-victim "$(grep -c '${victim.dir}' /proc/self/mountinfo)"
# busybox 1.35's wget -T segfaults: bound it with timeout instead
p net-loopback "$(timeout 5 wget -q -O- http://127.0.0.1:${server.port}/ 2>/dev/null | grep -c ${server.token})"
p net-slirp-host "$(timeout 5 wget -q -O- http://10.0.2.2:${server.port}/ 2>/dev/null | grep -c ${server.token})"
# last: chmod/chown of the sandbox's /dev/null (the host's must not change; the suite restores it if it does)
p devnull-chmod "$(ok sh -c 'chmod 777 /dev/null && chown 1:1 /dev/null')"
exit 0
`;
}

const PROBE_DOCKERFILE = [
  "FROM busybox:local",
  `COPY ${MARKER_FILE} /${MARKER_FILE}`,
  "COPY probe.sh probe-user.sh probe-none.sh /probes/",
  `RUN echo x > /dev/shm/${SHM} && sh /probes/probe.sh`,
  `RUN if [ -e /dev/shm/${SHM} ]; then echo "PROBE shm-next-run visible"; else echo "PROBE shm-next-run absent"; fi`,
  "USER 1000",
  "RUN sh /probes/probe-user.sh",
  "USER root",
  "RUN --network=none sh /probes/probe-none.sh",
  "",
].join("\n");

beforeAll(async () => {
  work = await mkdtemp("/tmp/tsbuild-hostile-");
  // Traversable, so the store's own modes (not mkdtemp's 0700) decide what other users reach (case 42).
  await chmod(work, 0o755);
  victim = await makeVictim();
  server = await startTokenServer();
  busyboxSource = await makeBusyboxArchive();
  busyboxTar = await makeBusyboxArchive(work);
  const disk = (await readFile("/proc/partitions", "utf8"))
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f.length === 4 && /^\d+$/.test(f[0] ?? ""));
  hostDisk = { major: Number(disk?.[0] ?? 7), minor: Number(disk?.[1] ?? 1) };
  devImageTar = join(work, "dev-image.tar");
  await writeDockerArchive(devImageTar, `hostile-dev-${S}:local`, [
    { name: "bin/", type: "directory" },
    { name: "bin/busybox", body: await readFile("/bin/busybox"), mode: 0o755 },
    { name: "bin/sh", type: "symlink", linkname: "busybox" },
    { name: "bin/head", type: "symlink", linkname: "busybox" },
    { name: "blk", type: "block-device", devmajor: 7, devminor: 0, mode: 0o600 },
    { name: "ok", body: "fine\n" },
  ]);
  watch = await startHostWatch({ suiteDir: work, victim, marker: MARK, createdPrefix: CREATED, shmPrefix: SHM });
}, 120_000);

afterAll(async () => {
  // Nothing may outlive the suite: marked processes (by pid), created host paths, a changed /dev/null mode.
  await watch?.cleanup();
  for (const p of await processesWith(MARK)) process.kill(p.pid, "SIGKILL");
  delete process.env[SECRET_ENV];
  await server?.close();
  await victim?.remove();
  if (work) await rm(work, { recursive: true, force: true });
  // makeBusyboxArchive caches its build in a temp dir of its own for this (forked) test file: drop it too.
  if (busyboxSource && /\/tsbuild-bbimg-[^/]+$/.test(dirname(busyboxSource))) await rm(dirname(busyboxSource), { recursive: true, force: true });
});

describe.each(EXECUTORS)("hostile builds under %s", (executor) => {
  let probe: Built;
  const pv = (name: string) => probe.probes.get(name);

  beforeAll(async () => {
    await requireTool(executor);
    for (const tarball of [busyboxTar, devImageTar]) {
      const loaded = await runCli(["load", "-i", tarball, "--root", rootOf(executor)], { timeoutMs: 60_000 });
      expect(loaded.code, loaded.output).toBe(0);
    }
    const ctx = await context(executor, "probes", {
      [MARKER_FILE]: "marker\n",
      "probe.sh": probeScript(),
      "probe-user.sh": 'echo "PROBE capeff-user $(grep CapEff: /proc/self/status | cut -f2)"\necho "PROBE uid-user $(id -u)"\n',
      "probe-none.sh": `echo "PROBE netnone-ifaces $(grep : /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')"\n`,
    });
    probe = await build(executor, ctx, PROBE_DOCKERFILE);
  }, 120_000);

  afterEach(async () => {
    expect(await watch.check()).toEqual([]);
  });

  it("the probe build succeeds, without a crash, and leaves the host intact", () => {
    expect(probe.code, probe.output).toBe(0);
    expectSafe(probe);
  });

  // ---- devices ----
  it("1: a mknod'ed loop0 (b 7 0) cannot be opened", () => {
    expect(pv("read-loop0"), probe.output).toBe("fail");
  });
  it("2: mknod'ed b 253 0, b 8 0, b 259 0 and the host's own disk cannot be opened", () => {
    expect({ dm0: pv("read-dm0"), sda: pv("read-sda"), nvme0: pv("read-nvme0"), hostdisk: pv("read-hostdisk") }).toEqual({
      dm0: "fail",
      sda: "fail",
      nvme0: "fail",
      hostdisk: "fail",
    });
  });
  it("3: a mknod'ed tty0 (c 4 0) cannot be written", () => {
    expect(pv("write-tty0"), probe.output).toBe("fail");
  });
  it("4: /dev holds only Docker's default nodes (no host devices)", () => {
    const names = (pv("dev-list") ?? "").split(" ").filter((n) => n !== "");
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !ALLOWED_DEV.has(n))).toEqual([]);
  });
  it("5: /dev/null, /dev/urandom and /dev/zero work", () => {
    expect({ null: pv("devnull-write"), urandom: pv("urandom-bytes"), zero: pv("zero-bytes") }).toEqual({ null: "ok", urandom: "4", zero: "4" });
  });
  it("6: chmod/chown of /dev/null inside RUN leaves the host's /dev/null mode and owner unchanged", () => {
    expect(pv("devnull-chmod")).toBeDefined();
    expect(only(probe, "dev-null")).toEqual([]);
  });
  it("7: /dev/shm is private: not on the host, not in the next RUN", () => {
    expect(pv("shm-next-run")).toBe("absent");
    expect(only(probe, "dev-shm")).toEqual([]);
  });

  // ---- /proc and /sys ----
  it("8: writing /proc/sys/kernel/printk_ratelimit_burst fails and the host value is unchanged", () => {
    expect(pv("sysctl-printk")).toBe("fail");
    expect(only(probe, "sysctl")).toEqual([]);
  });
  it("9: writing /proc/sys/kernel/core_pattern fails and the host value is unchanged", () => {
    expect(pv("sysctl-core-pattern")).toBe("fail");
    expect(only(probe, "sysctl")).toEqual([]);
  });
  it("10: writing /proc/sysrq-trigger fails", () => {
    expect(pv("sysrq")).toBe("fail");
  });
  it("11: /proc/kcore is unreadable or empty", () => {
    expect(pv("kcore-bytes")).toBe("0");
  });
  it("12: /proc/keys and /proc/timer_list are masked", () => {
    expect({ keys: pv("keys-bytes"), timerList: pv("timer-list-bytes") }).toEqual({ keys: "0", timerList: "0" });
  });
  it("13: /sys/firmware is empty", () => {
    expect(pv("sys-firmware-entries")).toBe("0");
  });
  it("14: sysfs is read-only (/sys/kernel/mm/ksm/run)", () => {
    expect(pv("sysfs-write")).toBe("fail");
  });

  // ---- privileges ----
  it("15: RUN is confined by a seccomp filter (Seccomp: 2)", () => {
    expect(pv("seccomp")).toBe("2");
  });
  it("16: unshare -Urm (a new user namespace) fails", () => {
    expect(pv("unshare-userns")).toBe("fail");
  });
  it("17: mount -t tmpfs fails", () => {
    expect(pv("mount-tmpfs")).toBe("fail");
  });
  it("18: root's effective and bounding capabilities are Docker's default set", () => {
    expect({ eff: pv("capeff-root"), bnd: pv("capbnd-root") }).toEqual({ eff: DOCKER_CAPS, bnd: DOCKER_CAPS });
  });
  it("19: USER 1000 has no effective capabilities", () => {
    expect({ uid: pv("uid-user"), eff: pv("capeff-user") }).toEqual({ uid: "1000", eff: "0000000000000000" });
  });
  it("23: /proc/1/root and chroot /proc/1/root show the container's root, not the host's", () => {
    expect(pv("proc1-root")).toContain(MARKER_FILE);
    const chrooted = pv("chroot-proc1") ?? "";
    if (chrooted !== "") expect(chrooted).toContain(MARKER_FILE);
  });
  it("24: /proc/self/mountinfo names no path of the victim dir", () => {
    expect(pv("mountinfo-victim")).toBe("0");
  });
  it("43: the host's 127.0.0.1 (and slirp's 10.0.2.2 host alias) is unreachable from a default RUN", () => {
    expect({ loopback: pv("net-loopback"), slirpHost: pv("net-slirp-host") }).toEqual({ loopback: "0", slirpHost: "0" });
  });
  it("45: RUN --network=none sees only lo", () => {
    expect(pv("netnone-ifaces")).toBe("lo");
  });

  it("20: USER 4294967295 fails the build with a clear error, never runs as root", async () => {
    const ctx = await context(executor, "uid-max");
    const b = await build(executor, ctx, "FROM busybox:local\nUSER 4294967295\nRUN id -u\n");
    expectSafe(b);
    expect(b.output).not.toMatch(/^#\d+ (?:\d+\.\d{3} )?0$/m);
    expectCleanFailure(b);
    // Clear = the error names the bad uid, not just "exit code: 1" with the runtime's message buried in the log.
    expect(b.output.match(/^error: .*$/m)?.[0]).toContain("4294967295");
  });

  it("21: a fork bomb of 1500 background sleeps is stopped by a pids limit, ends within 60 s, leaves nothing", async () => {
    const ctx = await context(executor, "forkbomb");
    const b = await build(executor, ctx, `FROM busybox:local\nRUN i=0; while [ $i -lt 1500 ]; do sleep ${MARK} & i=$((i+1)); done; echo "PROBE spawned $i"\n`, {
      timeoutMs: 60_000,
    });
    expectSafe(b);
    expect(b.timedOut).toBe(false);
    expect(b.ms).toBeLessThan(60_000);
    expect(await processesWith(MARK)).toEqual([]);
    // Either the step failed (fork refused) or it could not spawn all 1500.
    expect(b.code !== 0 || b.probes.get("spawned") !== "1500", b.output.slice(-2000)).toBe(true);
  }, 90_000);

  it("22: RUN with a background sleep finishes and the sleep does not survive it", async () => {
    const ctx = await context(executor, "background");
    const b = await build(executor, ctx, `FROM busybox:local\nRUN sleep ${MARK} &\n`, { timeoutMs: 30_000 });
    expect(b.timedOut).toBe(false);
    expect(b.code, b.output).toBe(0);
    expectSafe(b);
  }, 60_000);

  // ---- mount escapes ----
  it("25: a cache mount whose target goes through a symlink to /oldroot/tmp creates nothing on the host", async () => {
    const ctx = await context(executor, "cache-oldroot");
    const b = await build(executor, ctx, `FROM busybox:local\nRUN ln -s /oldroot/tmp /c\nRUN --mount=type=cache,target=/c/${CREATED}-25/sub true\n`);
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
  });

  it("26: /etc/hosts and /etc/resolv.conf planted as symlinks to /oldroot/tmp/... create nothing on the host", async () => {
    const ctx = await context(executor, "etc-symlinks");
    // Inside a copied directory, so COPY keeps them as symlinks (a top-level source symlink is followed in the context).
    await mkdir(join(ctx, "etcdir"));
    await symlink(`/oldroot/tmp/${CREATED}-26-hosts`, join(ctx, "etcdir/hosts"));
    await symlink(`/oldroot/tmp/${CREATED}-26-resolv`, join(ctx, "etcdir/resolv.conf"));
    const out = join(work, `out-${executor}-26`);
    const b = await build(executor, ctx, "FROM busybox:local\nCOPY etcdir/ /etc/\nRUN true\n", { extra: ["-o", `type=local,dest=${out}`] });
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
    else expect(await readlinkOrUndefined(join(out, "etc/hosts")), "the planted symlink should be in the image").toBe(`/oldroot/tmp/${CREATED}-26-hosts`);
  });

  it("27: tmpfs and bind mounts through a symlink to ../../../../tmp create nothing on the host", async () => {
    const ctx = await context(executor, "relative-symlink");
    const b = await build(
      executor,
      ctx,
      `FROM busybox:local\nRUN ln -s ../../../../tmp /c\nRUN --mount=type=tmpfs,target=/c/${CREATED}-27-tmpfs --mount=type=bind,target=/c/${CREATED}-27-bind true\n`,
    );
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
  });

  it("27b: tmpfs and bind mounts through a relative symlink into bwrap's setup root (../oldroot/tmp) create nothing on the host", async () => {
    const ctx = await context(executor, "relative-oldroot");
    const b = await build(
      executor,
      ctx,
      `FROM busybox:local\nRUN ln -s ../oldroot/tmp /d\nRUN --mount=type=tmpfs,target=/d/${CREATED}-27b-tmpfs --mount=type=bind,target=/d/${CREATED}-27b-bind true\n`,
    );
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
  });

  it("28: a mount target with .. (/../../tmp/...) stays inside the rootfs", async () => {
    const ctx = await context(executor, "dotdot-target");
    const b = await build(
      executor,
      ctx,
      `FROM busybox:local\nRUN --mount=type=cache,target=/../../tmp/${CREATED}-28 --mount=type=tmpfs,target=/../../tmp/${CREATED}-28b true\n`,
    );
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
  });

  it("29: a mount target under /proc/self/root stays inside or fails clearly", async () => {
    const ctx = await context(executor, "proc-self-root");
    const b = await build(executor, ctx, `FROM busybox:local\nRUN --mount=type=tmpfs,target=/proc/self/root/tmp/${CREATED}-29 true\n`);
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
  });

  it("30: secret mounts onto planted symlinks (to the victim, via /oldroot, to /oldroot/tmp) change nothing on the host", async () => {
    const ctx = await context(executor, "secret-symlink", { "secret.txt": "s3cret\n" });
    const b = await build(
      executor,
      ctx,
      `FROM busybox:local\nRUN mkdir -p /run/secrets && ln -s ${victim.file} /run/secrets/s && ln -s /oldroot${victim.file} /run/secrets/u && ln -s /oldroot/tmp/${CREATED}-30 /run/secrets/t\nRUN --mount=type=secret,id=s --mount=type=secret,id=u --mount=type=secret,id=t true\n`,
      { extra: ["s", "u", "t"].flatMap((id) => ["--secret", `id=${id},src=${join(ctx, "secret.txt")}`]) },
    );
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
  });

  // ---- bind-mount writes ----
  describe("31-34: bind mounts", () => {
    let b: Built;
    let ctx: string;
    beforeAll(async () => {
      ctx = await context(executor, "binds", { file: "original\n", keep: "keep\n", ".env": "TOKEN=hunter2\n", ".dockerignore": ".env\n" });
      b = await build(
        executor,
        ctx,
        [
          "FROM busybox:local AS stage1",
          "RUN echo original > /orig",
          "FROM busybox:local",
          "RUN --mount=type=bind,target=/ctx,rw sh -c 'echo pwned > /ctx/file; rm -f /ctx/keep'",
          `RUN --mount=type=bind,target=/ctx sh -c 'if echo pwned > /ctx/file 2>/dev/null; then echo "PROBE ro-write ok"; else echo "PROBE ro-write fail"; fi; if cat /ctx/.env >/dev/null 2>&1; then echo "PROBE ignored-env visible"; else echo "PROBE ignored-env absent"; fi'`,
          "RUN --mount=type=bind,from=stage1,target=/s,rw sh -c 'echo pwned > /s/orig'",
          "COPY --from=stage1 /orig /orig-copy",
          'RUN echo "PROBE stage-copy $(cat /orig-copy)"',
          "",
        ].join("\n"),
      );
    }, 60_000);
    it("the build succeeds without harm", () => {
      expect(b.code, b.output).toBe(0);
      expectSafe(b);
    });
    it("31: writes and deletes through a rw bind of the context leave the context unchanged", async () => {
      expect(await readOrUndefined(join(ctx, "file"))).toBe("original\n");
      expect(await readOrUndefined(join(ctx, "keep"))).toBe("keep\n");
    });
    it("32: a read-only bind cannot be written", () => {
      expect(b.probes.get("ro-write"), b.output).toBe("fail");
    });
    it("33: writes through a rw bind of a stage never reach the stage", () => {
      expect(b.probes.get("stage-copy"), b.output).toBe("original");
    });
    it("34: a .dockerignored file is not in the context bind mount", () => {
      expect(b.probes.get("ignored-env"), b.output).toBe("absent");
    });
  });

  // ---- context and archive tricks ----
  it("35a: COPY of a context symlink to /etc/passwd gives a symlink or a not-found error, never the host's file", async () => {
    const ctx = await context(executor, "copy-link");
    await symlink("/etc/passwd", join(ctx, "link"));
    const out = join(work, `out-${executor}-35a`);
    const b = await build(executor, ctx, "FROM busybox:local\nCOPY link /x\n", { extra: ["-o", `type=local,dest=${out}`] });
    expectSafe(b);
    // BuildKit resolves a top-level source symlink inside the context (<ctx>/etc/passwd: not found); a copied symlink is fine too.
    if (b.code !== 0) expectCleanFailure(b);
    else if (!(await lstat(join(out, "x"))).isSymbolicLink()) expect(await readOrUndefined(join(out, "x"))).not.toBe(await readFile("/etc/passwd", "utf8"));
  });

  it("35b: COPY linkdir/secret.txt through a context symlink to a host dir fails or stays in the context", async () => {
    const ctx = await context(executor, "copy-linkdir-file");
    await symlink(victim.subdir, join(ctx, "linkdir"));
    const out = join(work, `out-${executor}-35b`);
    const b = await build(executor, ctx, "FROM busybox:local\nCOPY linkdir/secret.txt /y\n", { extra: ["-o", `type=local,dest=${out}`] });
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
    else expect(await readOrUndefined(join(out, "y"))).not.toBe(victim.secret);
  });

  it("35c: COPY linkdir/ (a symlink to a host dir) fails or stays in the context", async () => {
    const ctx = await context(executor, "copy-linkdir");
    await symlink(victim.subdir, join(ctx, "linkdir"));
    const out = join(work, `out-${executor}-35c`);
    const b = await build(executor, ctx, "FROM busybox:local\nCOPY linkdir/ /z/\n", { extra: ["-o", `type=local,dest=${out}`] });
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
    else expect(await readOrUndefined(join(out, "z/secret.txt"))).not.toBe(victim.secret);
  });

  it("36: COPY ../../../../etc/passwd never copies the host's /etc/passwd", async () => {
    const ctx = await context(executor, "copy-dotdot");
    const out = join(work, `out-${executor}-36`);
    const b = await build(executor, ctx, "FROM busybox:local\nCOPY ../../../../etc/passwd /x\n", { extra: ["-o", `type=local,dest=${out}`] });
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
    else expect(await readOrUndefined(join(out, "x"))).not.toBe(await readFile("/etc/passwd", "utf8"));
  });

  it("37: ADD of a tar with .., absolute, symlink-traversing and hardlink-to-/etc/passwd members writes nothing outside the image", async () => {
    const ctx = await context(executor, "add-evil-tar");
    await writeFile(
      join(ctx, "evil.tar"),
      await tarBuffer([
        { name: `../../../../tmp/${CREATED}-37-dotdot`, body: "pwned\n" },
        { name: `/tmp/${CREATED}-37-absolute`, body: "pwned\n" },
        { name: "ln", type: "symlink", linkname: "/tmp" },
        { name: `ln/${CREATED}-37-through-symlink`, body: "pwned\n" },
        { name: "hl", type: "link", linkname: "/etc/passwd" },
        { name: "hl2", type: "link", linkname: "../../../../etc/passwd" },
      ]),
    );
    const out = join(work, `out-${executor}-37`);
    const b = await build(executor, ctx, "FROM busybox:local\nADD evil.tar /dst/\n", { extra: ["-o", `type=local,dest=${out}`] });
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
    else {
      const host = await readFile("/etc/passwd", "utf8");
      expect(await readOrUndefined(join(out, "dst/hl"))).not.toBe(host);
      expect(await readOrUndefined(join(out, "dst/hl2"))).not.toBe(host);
    }
  });

  it("38: a context with a FIFO and device nodes: COPY . does not hang, RUN cannot open a host device through it", async () => {
    const ctx = await context(executor, "special-files", { plain: "plain\n" });
    await run("mkfifo", [join(ctx, "pipe")]);
    await run("mknod", [join(ctx, "nulldev"), "c", "1", "3"]);
    await run("mknod", [join(ctx, "loopdev"), "b", "7", "0"]);
    const b = await build(
      executor,
      ctx,
      `FROM busybox:local\nCOPY . /ctx/\nRUN if head -c 512 /ctx/loopdev >/dev/null 2>&1; then echo "PROBE ctx-loopdev ok"; else echo "PROBE ctx-loopdev fail"; fi\n`,
      { timeoutMs: 20_000, onTimeout: () => unblockFifo(join(ctx, "pipe")) },
    );
    expect(b.timedOut, "the build hung on the FIFO").toBe(false);
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
    else expect(b.probes.get("ctx-loopdev"), b.output).toBe("fail");
  }, 60_000);

  // ---- secrets ----
  describe("39-42: secrets and store permissions", () => {
    const secret = `hostile-secret-${uniqueSuffix(8)}`;
    let b: Built;
    const seenInCmdline = new Set<string>();
    const seenInFiles = new Set<string>();
    beforeAll(async () => {
      process.env[SECRET_ENV] = secret;
      const ctx = await context(executor, "secret-env");
      try {
        b = await build(
          executor,
          ctx,
          `FROM busybox:local\nRUN --mount=type=secret,id=s,env=S sh -c 'test -n "$S" && echo "PROBE secret-env set"; sleep 2'\n`,
          {
            extra: ["--secret", `id=s,env=${SECRET_ENV}`, "-t", `hostile-secret-${S}:latest`],
            during: async (finished) => {
              while (!finished()) {
                for (const p of await processesWith(secret)) seenInCmdline.add(`pid ${p.pid}: ${p.args.split(" ")[0]} (its argv holds the secret)`);
                for (const f of await filesContaining(rootOf(executor), secret, { othersReadable: true })) seenInFiles.add(f);
                await new Promise((r) => setTimeout(r, 150));
              }
            },
          },
        );
      } finally {
        delete process.env[SECRET_ENV];
      }
    }, 60_000);
    it("the secret reaches the RUN as an env var", () => {
      expect(b.code, b.output).toBe(0);
      expectSafe(b);
      expect(b.probes.get("secret-env")).toBe("set");
    });
    it("39: while the RUN runs, no process's command line and no file readable by others holds the secret", () => {
      expect([...seenInCmdline]).toEqual([]);
      expect([...seenInFiles]).toEqual([]);
    });
    it("40: after the build the secret is nowhere in the store, the build output or `tsbuild history`", async () => {
      expect(await filesContaining(rootOf(executor), secret)).toEqual([]);
      expect(b.output).not.toContain(secret);
      const h = await runCli(["history", "--no-trunc", `hostile-secret-${S}:latest`, "--root", rootOf(executor)], { timeoutMs: 30_000 });
      const plain = h.code === 0 ? h : await runCli(["history", `hostile-secret-${S}:latest`, "--root", rootOf(executor)], { timeoutMs: 30_000 });
      expect(plain.code, plain.output).toBe(0);
      expect(plain.output).not.toContain(secret);
    });
    it("42: a setuid binary written into a cache mount is not reachable by another user", async () => {
      const ctx = await context(executor, "setuid-cache");
      const c = await build(
        executor,
        ctx,
        `FROM busybox:local\nRUN --mount=type=cache,target=/c,id=hostile-suid-${S} cp /bin/busybox /c/sh && chmod 4755 /c/sh\n`,
      );
      expect(c.code, c.output).toBe(0);
      expectSafe(c);
      const base = join(rootOf(executor), "cache-mounts");
      const found: string[] = [];
      for (const d of await readdir(base)) {
        const p = join(base, d, "sh");
        if (
          await stat(p)
            .then((st) => (st.mode & 0o4000) !== 0)
            .catch(() => false)
        )
          found.push(p);
      }
      expect(found.length).toBe(1);
      const probeAs = await run("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "stat", found[0] as string]).then(
        () => "reachable",
        (e: { stderr?: string }) => (/Permission denied/.test(e.stderr ?? "") ? "EACCES" : `failed: ${e.stderr ?? ""}`),
      );
      // A reachable setuid-root shell is a root shell for every local user: drop it before anything else fails.
      await rm(found[0] as string, { force: true });
      expect(probeAs).toBe("EACCES");
    });
    it("41: the store root and <root>/cache-mounts have no group/other permission bits", async () => {
      const root = await stat(rootOf(executor));
      const cache = await stat(join(rootOf(executor), "cache-mounts"));
      expect({ root: (root.mode & 0o077).toString(8), cacheMounts: (cache.mode & 0o077).toString(8) }).toEqual({ root: "0", cacheMounts: "0" });
    });
  });

  // ---- network ----
  it("44a: RUN --network=host without --allow network.host fails with an error naming the entitlement", async () => {
    const ctx = await context(executor, "nethost-denied");
    const b = await build(executor, ctx, `FROM busybox:local\nRUN --network=host timeout 5 wget -q -O- http://127.0.0.1:${server.port}/\n`);
    expectSafe(b);
    expect(b.output).not.toContain(server.token);
    expectCleanFailure(b);
    expect(b.output).toContain("network.host");
  });

  it("44b: RUN --network=host with --allow network.host reaches the host's loopback", async () => {
    const ctx = await context(executor, "nethost-allowed");
    const b = await build(executor, ctx, `FROM busybox:local\nRUN --network=host timeout 5 wget -q -O- http://127.0.0.1:${server.port}/\n`, {
      extra: ["--allow", "network.host"],
    });
    expectSafe(b);
    expect(b.code, b.output).toBe(0);
    expect(b.output).toContain(server.token);
  });

  // ---- data safety ----
  it("46: chmod 000 in RUN and COPY --chmod=000 give mode 000 in the exported layers", async () => {
    const ctx = await context(executor, "mode-000", { f: "f\n" });
    const out = join(work, `out-${executor}-46`);
    const b = await build(executor, ctx, "FROM busybox:local\nRUN chmod 000 /etc/group\nCOPY --chmod=000 f /f\n", {
      extra: ["-o", `type=oci,dest=${out},tar=false`],
    });
    expectSafe(b);
    expect(b.code, b.output).toBe(0);
    const entries = await ociLayoutEntries(out);
    expect({ group: entries.get("etc/group")?.mode, f: entries.get("f")?.mode }).toEqual({ group: 0, f: 0 });
  });

  it("47: -o type=local of an image with a block device writes no device node, and RUN cannot open it", async () => {
    const ctx = await context(executor, "device-image");
    const out = join(work, `out-${executor}-47`);
    const b = await build(
      executor,
      ctx,
      `FROM hostile-dev-${S}:local\nRUN if head -c 512 /blk >/dev/null 2>&1; then echo "PROBE image-blk ok"; else echo "PROBE image-blk fail"; fi\n`,
      { extra: ["-o", `type=local,dest=${out}`] },
    );
    expectSafe(b);
    if (b.code !== 0) expectCleanFailure(b);
    else {
      expect(b.probes.get("image-blk"), b.output).toBe("fail");
      expect(await readOrUndefined(join(out, "ok"))).toBe("fine\n");
    }
    expect(await deviceNodesUnder(out)).toEqual([]);
  });
});
