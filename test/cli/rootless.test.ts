// Rootless builds (issue 15): the built CLI run as an ordinary user (setpriv) re-executes itself in a user namespace
// with the user's subordinate ids, and builds what root builds — byte for byte with SOURCE_DATE_EPOCH — with crun,
// each snapshotter, push/pull, export and prune; without subordinate ids, what needs no other id still builds and a
// chown to another id fails with NO_SUBORDINATE_IDS; a SIGKILLed rootless build leaves nothing running.
import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tsbuildProcess, type CliResult } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { startRegistry, type RegistryServer } from "../helpers/registry-server.js";
import { processesWith, waitFor } from "../helpers/hostile.js";
import { processesOf, rootlessHome, shareWithUser, withoutSubids, withSubids, type RootlessHome, type RootlessUser } from "../helpers/rootless-user.js";

const EPOCH = { SOURCE_DATE_EPOCH: "1700000000" };
let shared: string; // contexts and the base image archive, readable by the test users
let archive: string;
let user: RootlessUser;
let home: RootlessHome;

/** A build context in `shared` with these files (made readable for the test users). */
async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(shared, name);
  await mkdir(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  await shareWithUser(dir);
  return dir;
}

/** The image id a build printed ("writing image sha256:... done"). */
function imageId(stderr: string): string {
  const m = /writing image (sha256:[0-9a-f]{64}) done/.exec(stderr);
  if (!m) throw new Error(`no image id in:\n${stderr}`);
  return m[1] as string;
}

/** No process of the user (or its subordinate ids) is left; any found is killed by pid and the test fails. */
async function expectNoProcessesLeft(u: RootlessUser): Promise<void> {
  await waitFor(async () => (await processesOf(u)).length === 0, 5_000);
  const left = await processesOf(u);
  for (const pid of left) process.kill(pid, "SIGKILL");
  expect(left).toEqual([]);
}

/**
 * Starts a rootless build whose RUN sleeps, sends `signal` to the CLI once the sleep runs, and waits for the CLI to end
 * and the sleep to be gone (killed by pid if not, failing the test).
 */
async function signalDuringRun(name: string, signal: NodeJS.Signals): Promise<{ ctx: string; result: CliResult }> {
  const marker = `${name.length}000.${process.pid % 100000}`;
  const ctx = await context(name, { Dockerfile: `FROM busybox:local\nRUN --network=none sleep ${marker}\n` });
  const started = home.spawnTsbuild(["build", "--progress=plain", ctx]);
  const running = async () => (await processesWith(`sleep ${marker}`)).length > 0;
  try {
    expect(await waitFor(running, 30_000)).toBe(true);
    process.kill(started.pid, signal);
    const result = await started.done;
    expect(await waitFor(async () => !(await running()), 5_000)).toBe(true);
    return { ctx, result };
  } finally {
    for (const p of await processesWith(`sleep ${marker}`)) process.kill(p.pid, "SIGKILL");
  }
}

beforeAll(async () => {
  user = await withSubids();
  shared = await mkdtemp(join(tmpdir(), "tsbuild-rootless-"));
  await chmod(shared, 0o755);
  archive = await makeBusyboxArchive(shared);
  await chmod(archive, 0o644);
  home = await rootlessHome(user);
  const loaded = await home.tsbuild(["load", "-i", archive]);
  expect(loaded.code, loaded.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await home?.cleanup();
  if (shared) await rm(shared, { recursive: true, force: true });
  if (user) await expectNoProcessesLeft(user);
});

const MAIN_DOCKERFILE = `FROM busybox:local AS base
RUN echo one > /created && echo two >> /etc/motd && rm /bin/vi && mkdir -p /data/sub && chown -R 1000:1000 /data
RUN --mount=type=cache,target=/cache echo cached > /cache/c && cp /cache/c /from-cache
RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null && test ! -e /run/secrets/token-copy
WORKDIR /work/dir
USER app
RUN id -u > /home/app/uid && touch /work/dir/by-app || true
USER root
COPY --chown=app:app hello.txt /home/app/hello.txt

FROM busybox:local
COPY --from=base /created /data /home/app/hello.txt /out/
COPY --from=base --chown=1000:1000 /home/app/uid /out/uid
RUN ls -ln /out > /out/listing && stat -c '%u:%g %n' /out/hello.txt /out/uid >> /out/listing
`;

describe("rootless build with subordinate ids (crun)", () => {
  it("builds what root builds, with the same image digest under SOURCE_DATE_EPOCH", async () => {
    const ctx = await context("main", { Dockerfile: MAIN_DOCKERFILE, "hello.txt": "hello\n", token: "s3cret\n" });
    const args = ["build", "--progress=plain", "--executor", "crun", "--secret", `id=token,src=${join(ctx, "token")}`, "-t", "main:1", ctx];
    const rootless = await home.tsbuild(args, { env: EPOCH });
    expect(rootless.code, rootless.stderr).toBe(0);
    expect(rootless.stderr).not.toContain("this is a bug");
    // The same build as root, in a store of its own.
    const rootStore = join(shared, "root-store");
    expect((await tsbuildProcess(["load", "--root", rootStore, "-i", archive])).code).toBe(0);
    const asRoot = await tsbuildProcess([...args.slice(0, 1), "--root", rootStore, ...args.slice(1)], { env: { ...process.env, ...EPOCH } });
    expect(asRoot.code, asRoot.stderr).toBe(0);
    expect(imageId(rootless.stderr)).toBe(imageId(asRoot.stderr));
    // Owners as a root build records them, read back through a rootless `tsbuild run`.
    const listing = await home.tsbuild(["run", "main:1", "cat", "/out/listing"]);
    expect(listing.code, listing.stderr).toBe(0);
    expect(listing.stdout).toMatch(/^1000:1000 \/out\/hello\.txt$/m);
    expect(listing.stdout).toMatch(/^1000:1000 \/out\/uid$/m);
    expect(listing.stdout).toMatch(/^d\S+\s+\d+\s+1000\s+1000 .* sub$/m);
    await expectNoProcessesLeft(user);
  }, 180_000);

  it("runs RUN with each snapshotter (overlay, fuse-overlayfs, copy) to the same image", async () => {
    const ctx = await context("snapshots", {
      Dockerfile:
        "FROM busybox:local\nRUN rm -r /home/app && rm /bin/ls && mkdir -p /root/old && rm -r /root && mkdir -m 700 /root && touch /root/new && mkdir /etc/new && echo x > /etc/new/f && chown 1000:1000 /etc/new/f\n",
    });
    const ids: string[] = [];
    for (const snapshotter of ["overlay", "fuse-overlayfs", "copy"]) {
      const r = await home.tsbuild(["build", "--debug", "--progress=plain", "--no-cache", ctx], { env: { ...EPOCH, TSBUILD_SNAPSHOTTER: snapshotter } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`debug: RUN snapshots: ${snapshotter} (forced)`);
      ids.push(imageId(r.stderr));
    }
    expect(new Set(ids).size, ids.join(" ")).toBe(1);
    // auto picks native overlayfs in the user namespace on this kernel (6.x).
    const auto = await home.tsbuild(["build", "--debug", "--progress=plain", "--no-cache", ctx], { env: EPOCH });
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).toContain("debug: RUN snapshots: overlay");
    expect(imageId(auto.stderr)).toBe(ids[0]);
  }, 180_000);

  it("RUN --network=none and host work, and the default network reaches out through slirp4netns", async () => {
    const ctx = await context("network", {
      Dockerfile:
        "FROM busybox:local\nRUN --network=none ip link | grep -c ': ' > /none\nRUN --network=host true\nRUN grep -q nameserver /etc/resolv.conf && ip addr show tap0 > /dev/null\n",
    });
    const r = await home.tsbuild(["build", "--progress=plain", "--allow", "network.host", ctx]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  it("pushes to and pulls from a local registry, exports, and prunes", async () => {
    let reg: RegistryServer | undefined;
    try {
      reg = await startRegistry();
      const ctx = await context("push", { Dockerfile: "FROM busybox:local\nRUN echo pushed > /p && chown 1000 /p\n" });
      const ref = `${reg.host}/rootless/app:1`;
      const built = await home.tsbuild(["build", "--progress=plain", "-t", ref, "--push", ctx]);
      expect(built.code, built.stderr).toBe(0);
      expect((await home.tsbuild(["rmi", ref])).code).toBe(0);
      const pulled = await home.tsbuild(["pull", ref]);
      expect(pulled.code, pulled.stderr).toBe(0);
      const shown = await home.tsbuild(["run", ref, "stat", "-c", "%u %n", "/p"]);
      expect(shown.stdout.trim()).toBe("1000 /p");
      const out = join(home.home, "image.tar");
      const saved = await home.tsbuild(["save", "-o", out, ref]);
      expect(saved.code, saved.stderr).toBe(0);
      const exported = await home.tsbuild(["build", "--progress=plain", "-o", `type=oci,dest=${join(home.home, "oci.tar")}`, ctx]);
      expect(exported.code, exported.stderr).toBe(0);
      // A local export belongs to the user, not to its subordinate ids (as BuildKit's client writes it).
      const local = join(home.home, "local");
      const toDir = await home.tsbuild(["build", "--progress=plain", "-o", `type=local,dest=${local}`, ctx]);
      expect(toDir.code, toDir.stderr).toBe(0);
      expect((await stat(join(local, "p"))).uid).toBe(user.uid);
      expect((await stat(join(local, "home/app"))).uid).toBe(user.uid);
      const pruned = await home.tsbuild(["prune", "--all", "--force"]);
      expect(pruned.code, pruned.stderr).toBe(0);
      expect((await home.tsbuild(["du"])).code).toBe(0);
    } finally {
      await reg?.stop();
    }
    await expectNoProcessesLeft(user);
  }, 180_000);

  it("exports and imports a build cache (with its cache mounts), with ONBUILD, ADD --chmod, bind and tmpfs mounts", async () => {
    const ctx = await context("cache", {
      Dockerfile:
        "FROM busybox:local AS parent\nONBUILD RUN echo onbuild > /onbuild\nFROM parent\nADD --chmod=0750 --chown=app a.txt /a.txt\nRUN --mount=type=bind,target=/ctx --mount=type=tmpfs,target=/scratch cp /ctx/a.txt /scratch/ && cat /scratch/a.txt > /b.txt\nRUN --mount=type=cache,target=/c,uid=1000 touch /c/x && chown 1000 /c/x\n",
      "a.txt": "a\n",
    });
    const cacheDir = join(home.home, "cache");
    const first = await home.tsbuild(
      ["build", "--progress=plain", "--cache-to", `type=local,dest=${cacheDir},mode=max,cache-mounts=true`, "-t", "cached:1", ctx],
      {
        env: EPOCH,
      },
    );
    expect(first.code, first.stderr).toBe(0);
    const other = await rootlessHome(user);
    try {
      expect((await other.tsbuild(["load", "-i", archive])).code).toBe(0);
      await chmod(home.home, 0o711); // the second store reads the first one's exported cache
      await shareWithUser(cacheDir);
      const second = await other.tsbuild(["build", "--progress=plain", "--cache-from", `type=local,src=${cacheDir}`, "-t", "cached:2", ctx], { env: EPOCH });
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toMatch(/CACHED/);
      expect(imageId(second.stderr)).toBe(imageId(first.stderr));
      const shown = await other.tsbuild(["run", "cached:2", "sh", "-c", "stat -c '%a %u' /a.txt; cat /onbuild /b.txt"]);
      expect(shown.stdout.split("\n").filter(Boolean), shown.stderr).toEqual(["750 1000", "onbuild", "a"]);
    } finally {
      await chmod(home.home, 0o700);
      await other.cleanup();
    }
  }, 180_000);

  it("keeps runtime state in a private per-user directory, never /run/tsbuild", async () => {
    const ctx = await context("state", { Dockerfile: "FROM busybox:local\nRUN true\n" });
    const r = await home.tsbuild(["build", "--progress=plain", "--no-cache", ctx]);
    expect(r.code, r.stderr).toBe(0);
    const dir = join(tmpdir(), `tsbuild-${user.uid}`);
    const st = await stat(dir);
    expect(st.uid).toBe(user.uid);
    expect(st.mode & 0o777).toBe(0o700);
    // One that someone else owns (in shared /tmp) is refused, never used.
    await chown(dir, 0, 0);
    try {
      const refused = await home.tsbuild(["build", "--progress=plain", "--no-cache", ctx]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("[RUNTIME_STATE_DIR]");
      expect(refused.stderr).toContain(`refusing runtime directory ${dir}`);
    } finally {
      await chown(dir, user.uid, user.gid);
    }
    // With XDG_RUNTIME_DIR the state goes there instead.
    const xdg = join(home.home, "run");
    await mkdir(xdg, { mode: 0o700 });
    await chown(xdg, user.uid, user.gid);
    const withXdg = await home.tsbuild(["build", "--progress=plain", "--no-cache", ctx], { env: { XDG_RUNTIME_DIR: xdg } });
    expect(withXdg.code, withXdg.stderr).toBe(0);
    expect(await readdir(join(xdg, "tsbuild"))).toContain("crun");
  }, 120_000);

  it("a SIGKILLed rootless build leaves no process behind, and the next build runs", async () => {
    const { ctx } = await signalDuringRun("kill", "SIGKILL");
    await expectNoProcessesLeft(user);
    await writeFile(join(ctx, "Dockerfile"), "FROM busybox:local\nRUN --network=none true\n");
    const again = await home.tsbuild(["build", "--progress=plain", ctx]);
    expect(again.code, again.stderr).toBe(0);
    // The killed build's scratch directory was cleaned by the next one.
    const tmp = await readdir(join(home.store, "tmp")).catch(() => [] as string[]);
    expect(tmp.filter((n) => !n.startsWith("."))).toEqual([]);
    await expectNoProcessesLeft(user);
  }, 120_000);
});

describe.each(["runc", "bwrap"])("rootless RUN with %s", (executor) => {
  it("runs as root and as USER, with the default network and --network=none", async () => {
    const ctx = await context(`exec-${executor}`, {
      Dockerfile:
        "FROM busybox:local\nRUN echo hi > /x && chown 1000:1000 /x && id -u > /root-id\nUSER app\nRUN id -u > /home/app/id && test -O /home/app\nRUN --network=none ls /proc/self > /dev/null\n",
    });
    const r = await home.tsbuild(["build", "--progress=plain", "--no-cache", "--executor", executor, "-t", `exec-${executor}:1`, ctx]);
    expect(r.code, r.stderr).toBe(0);
    const shown = await home.tsbuild(["run", "--executor", executor, `exec-${executor}:1`, "sh", "-c", "stat -c '%u:%g' /x; cat /root-id /home/app/id"]);
    expect(shown.stdout.split("\n").filter(Boolean)).toEqual(["1000:1000", "0", "1000"]);
    await expectNoProcessesLeft(user);
  }, 120_000);
});

describe("Ctrl-C of a rootless build", () => {
  it("SIGINT ends the build with 130 and leaves nothing running", async () => {
    const { result } = await signalDuringRun("sigint", "SIGINT");
    expect(result.code, result.stderr).toBe(130);
    await expectNoProcessesLeft(user);
  }, 120_000);
});

describe("rootless build without subordinate ids", () => {
  let plain: RootlessHome;
  beforeAll(async () => {
    plain = await rootlessHome(await withoutSubids());
  }, 60_000);
  afterAll(async () => {
    await plain?.cleanup();
  });

  it("builds a Dockerfile that needs no other id", async () => {
    const ctx = await context("single-ok", { Dockerfile: "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a\n" });
    const r = await plain.tsbuild(["build", "--progress=plain", "--debug", "-t", "single:1", ctx]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("uid 0 → ");
    expect(r.stderr).toContain("only");
  }, 60_000);

  it("fails COPY --chown=1000 with NO_SUBORDINATE_IDS, naming the instruction and the fix", async () => {
    // Not the stage's last step: the file must exist on disk with its owner (a stage's last context COPY writes its
    // layer straight from the context, so that one alone needs no chown and records 1000 in the layer correctly).
    const ctx = await context("single-chown", { Dockerfile: "FROM scratch\nCOPY --chown=1000 a.txt /a.txt\nCOPY a.txt /b.txt\n", "a.txt": "a\n" });
    const r = await plain.tsbuild(["build", "--progress=plain", ctx]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("[NO_SUBORDINATE_IDS]");
    expect(r.stderr).toMatch(/Dockerfile:2:1: COPY: /);
    expect(r.stderr).toContain(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${plain.user.name}`);
    expect(r.stderr).not.toContain("this is a bug");
  }, 60_000);

  it("a later stage reading a stage whose last COPY gave another owner fails the same way, never with a wrong owner", async () => {
    const ctx = await context("single-chown-from", {
      Dockerfile: "FROM scratch AS a\nCOPY --chown=1000 a.txt /a.txt\nFROM scratch\nCOPY --from=a /a.txt /b.txt\n",
      "a.txt": "a\n",
    });
    const r = await plain.tsbuild(["build", "--progress=plain", ctx]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("[NO_SUBORDINATE_IDS]");
    expect(r.stderr).not.toContain("this is a bug");
  }, 60_000);

  it("fails a base image with files of other owners the same way, instead of a wrong owner", async () => {
    const loaded = await plain.tsbuild(["load", "-i", archive]);
    expect(loaded.code, loaded.stderr).toBe(0);
    const ctx = await context("single-base", { Dockerfile: "FROM busybox:local\nRUN true\n" });
    const r = await plain.tsbuild(["build", "--progress=plain", ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[NO_SUBORDINATE_IDS]");
    await expectNoProcessesLeft(plain.user);
  }, 60_000);
});

describe("when the user namespace cannot be made", () => {
  it("fails with USERNS_FAILED pointing to tsbuild doctor (here: unshare not on PATH)", async () => {
    const ctx = await context("no-unshare", { Dockerfile: "FROM scratch\n" });
    const r = await home.tsbuild(["build", ctx], { env: { PATH: "/nonexistent" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unshare is not on PATH (apt-get install -y util-linux) [USERNS_FAILED]");
    expect(r.stderr).toContain("tsbuild doctor");
    expect(r.stderr).not.toContain("this is a bug");
  }, 60_000);
});

describe("tsbuild doctor as an ordinary user", () => {
  it("reports the subordinate ids it found, and their absence with the fix", async () => {
    const ok = await home.tsbuild(["doctor", "--format", "json"]);
    const found = JSON.parse(ok.stdout) as { checks: { id: string; status: string; fix?: string }[] };
    expect(found.checks.find((c) => c.id === "subids")?.status).toBe("ok");
    const plain = await rootlessHome(await withoutSubids());
    try {
      // (newuidmap hidden from PATH is test/cli/doctor.test.ts's case.)
      const r = await plain.tsbuild(["doctor", "--format", "json"]);
      const report = JSON.parse(r.stdout) as { checks: { id: string; status: string; fix?: string }[] };
      const by = Object.fromEntries(report.checks.map((c) => [c.id, c]));
      expect(by["subids"]).toMatchObject({ status: "warning", fix: expect.stringContaining("usermod --add-subuids") });
    } finally {
      await plain.cleanup();
    }
  }, 60_000);
});
