import { access, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { BuildError } from "../../src/errors.js";
import type { LayerEntry } from "../../src/layer/types.js";
import { mountsUnder } from "../../src/snapshot/mounts.js";
import { runStep } from "../../src/solver/run-step.js";
import { createSnapshotter } from "../../src/snapshot/snapshotter.js";
import { parseMountSpec, type SecretSource } from "../../src/solver/mount-spec.js";
import { prepareRunMounts } from "../../src/solver/run-mounts.js";
import { makeBusyboxRootfs } from "../helpers/busybox-rootfs.js";
import { captureIO, listContainers, makeExecutor, PATH_ENV, type ExecutorName } from "../helpers/sandbox.js";

const CONFIGS: { exName: ExecutorName; snapshotter: "overlay" | "copy" }[] = [
  { exName: "crun", snapshotter: "overlay" },
  { exName: "bwrap", snapshotter: "overlay" },
  { exName: "crun", snapshotter: "copy" },
];

describe.each(CONFIGS)("RUN --mount with $exName + $snapshotter", ({ exName, snapshotter }) => {
  let base: string;
  let rootfs: string;
  let context: string;
  let store: string;
  let stage: string;
  let secrets: Map<string, SecretSource>;
  let steps = 0;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "tsbuild-runmounts-"));
    rootfs = await makeBusyboxRootfs(join(base, "rootfs"));
    // As in most images: the runtime's /dev, /proc, /sys mount points would otherwise be the first RUN's entries.
    for (const p of ["dev", "proc", "sys"]) await mkdir(join(rootfs, p));
    context = join(base, "context");
    store = join(base, "store");
    stage = join(base, "stage");
    await mkdir(join(context, "sub"), { recursive: true });
    await writeFile(join(context, "hello.txt"), "hello from context\n");
    await writeFile(join(context, "sub/inner"), "inner\n");
    await mkdir(join(stage, "out"), { recursive: true });
    await writeFile(join(stage, "out/artifact"), "built\n");
    await writeFile(join(base, "secret.txt"), "s3cr3t-value");
    secrets = new Map([["tok", { src: join(base, "secret.txt") }]]);
  });

  afterEach(async () => {
    expect(await mountsUnder(base)).toEqual([]);
    expect(await listContainers(exName, join(base, "state"))).toEqual([]);
    await rm(base, { recursive: true, force: true });
  });

  async function run(script: string, rawMounts: string[], opts: { uid?: number } = {}) {
    const step = steps++;
    const scratch = join(base, `mounts-${step}`);
    const prepared = await prepareRunMounts(
      rawMounts.map((m) => parseMountSpec(m)),
      {
        storeRoot: store,
        scratch,
        context: { root: context },
        stageRootfs: async (name) => (name === "build" ? stage : undefined),
        secrets,
        signal: new AbortController().signal,
      },
    );
    try {
      const io = captureIO();
      const snap = join(base, `snap-${step}`);
      await mkdir(snap);
      const r = await runStep({
        rootfs,
        scratch: snap,
        executor: await makeExecutor(exName, join(base, "state")),
        spec: {
          args: ["/bin/sh", "-c", script],
          env: [PATH_ENV, ...prepared.env],
          cwd: "/",
          uid: opts.uid ?? 0,
          gid: opts.uid ?? 0,
          network: "none",
          extraMounts: prepared.mounts,
        },
        io,
        signal: new AbortController().signal,
        snapshotter: createSnapshotter(snapshotter),
      });
      return { ...r, out: io.out(), err: io.err() };
    } finally {
      await prepared.release();
      await prepared.release(); // idempotent
      await expect(access(scratch)).rejects.toThrow();
    }
  }

  const paths = (entries: LayerEntry[]) => entries.map((e) => e.path);

  test("a cache mount keeps its contents across runs and never enters the layer", async () => {
    const m = ["type=cache,target=/root/.cache,id=pkgs"];
    const r1 = await run("echo one >> /root/.cache/log && touch /made", m);
    expect(r1.exitCode).toBe(0);
    expect(paths(r1.entries)).toContain("made");
    expect(paths(r1.entries).some((p) => p.startsWith("root/.cache"))).toBe(false);
    const r2 = await run("echo two >> /root/.cache/log && cat /root/.cache/log", m);
    expect(r2.out).toBe("one\ntwo\n");
    expect(r2.entries).toEqual([]);
    await expect(access(join(rootfs, "root/.cache"))).rejects.toThrow();
  });

  test("cache uid/gid/mode apply on first use; locked sharing works and releases", async () => {
    const m = ["type=cache,target=/cache,sharing=locked,uid=1000,gid=1000,mode=0700"];
    const r = await run("echo x > /cache/f && id -u", m, { uid: 1000 });
    expect(r.exitCode).toBe(0);
    expect(r.out).toBe("1000\n");
    const dirs = (await readdir(join(store, "cache-mounts"))).filter((d) => !d.endsWith(".lock"));
    expect(dirs).toHaveLength(1);
    const st = await stat(join(store, "cache-mounts", dirs[0] as string));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1000, 1000, 0o700]);
    // The lock is gone after release, so a second locked run does not wait.
    expect((await readdir(join(store, "cache-mounts"))).filter((d) => d.endsWith(".lock"))).toEqual([]);
    expect((await run("cat /cache/f", m, { uid: 1000 })).out).toBe("x\n");
  });

  test("a private cache in use elsewhere gets a fresh instance", async () => {
    const spec = parseMountSpec("type=cache,target=/c,sharing=private");
    const ctx = (n: string) => ({
      storeRoot: store,
      scratch: join(base, n),
      context: { root: context },
      stageRootfs: async () => undefined,
      secrets,
      signal: new AbortController().signal,
    });
    const a = await prepareRunMounts([spec], ctx("pa"));
    const b = await prepareRunMounts([spec], ctx("pb"));
    expect(a.mounts[0]?.source).toContain(join(store, "cache-mounts"));
    expect(b.mounts[0]?.source).toContain(join(base, "pb"));
    await b.release();
    await a.release();
    const c = await prepareRunMounts([spec], ctx("pc"));
    expect(c.mounts[0]?.source).toBe(a.mounts[0]?.source);
    await c.release();
  });

  test("a locked cache waits for its holder, and the wait can be aborted", async () => {
    const spec = parseMountSpec("type=cache,target=/c,sharing=locked");
    const ctx = (n: string, signal = new AbortController().signal) => ({
      storeRoot: store,
      scratch: join(base, n),
      context: { root: context },
      stageRootfs: async () => undefined,
      secrets,
      signal,
    });
    const a = await prepareRunMounts([spec], ctx("la"));
    let bDone = false;
    const b = prepareRunMounts([spec], ctx("lb")).then((p) => {
      bDone = true;
      return p;
    });
    const ac = new AbortController();
    const c = prepareRunMounts([spec], ctx("lc", ac.signal)).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    expect(bDone).toBe(false);
    ac.abort();
    expect(await c).toMatchObject({ code: "CANCELLED" });
    await expect(access(join(base, "lc"))).rejects.toThrow();
    await a.release();
    const bp = await b;
    expect(bp.mounts[0]?.source).toBe(a.mounts[0]?.source);
    await bp.release();
  });

  test("a bind mount from the context is readable and read-only by default", async () => {
    const r = await run("cat /src/hello.txt /src/sub/inner; echo bad > /src/new 2>/dev/null && echo wrote || echo denied", ["target=/src"]);
    expect(r.out).toBe("hello from context\ninner\ndenied\n");
    expect(r.entries).toEqual([]);
    await expect(access(join(context, "new"))).rejects.toThrow();
  });

  test("source= picks a file or dir; `..` cannot leave the context", async () => {
    const r = await run("cat /h /s/inner", ["type=bind,source=../../hello.txt,target=/h", "type=bind,source=sub,target=/s"]);
    expect(r.out).toBe("hello from context\ninner\n");
    await expect(run("true", ["type=bind,source=missing,target=/m"])).rejects.toMatchObject({ code: "MOUNT_SOURCE_NOT_FOUND" });
  });

  test("rw bind writes are visible in the RUN but reach neither the source nor the layer", async () => {
    const r = await run("echo changed > /src/hello.txt && echo new > /src/new && cat /src/hello.txt", ["type=bind,target=/src,rw"]);
    expect(r.out).toBe("changed\n");
    expect(r.entries).toEqual([]);
    expect(await readFile(join(context, "hello.txt"), "utf8")).toBe("hello from context\n");
    await expect(access(join(context, "new"))).rejects.toThrow();
  });

  test("bind from a stage; a from= with no rootfs (scratch) is refused", async () => {
    const r = await run("cat /o/artifact", ["type=bind,from=build,source=/out,target=/o"]);
    expect(r.out).toBe("built\n");
    const err = await run("true", ["type=bind,from=scratch,target=/o"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err).toMatchObject({ code: "UNSUPPORTED", message: expect.stringMatching(/from scratch is not supported/) });
  });

  test("tmpfs is empty and writable, and its files stay out of the layer", async () => {
    const r = await run("ls -A /scratchpad | wc -l; echo hi > /scratchpad/f && cat /scratchpad/f", ["type=tmpfs,target=/scratchpad"]);
    expect(r.exitCode).toBe(0);
    expect(r.out.replace(/ /g, "")).toBe("0\nhi\n");
    expect(r.entries).toEqual([]);
  });

  test("a secret file is readable at /run/secrets/<id> and absent from the layer", async () => {
    const r = await run("cat /run/secrets/tok; echo; stat -c '%a %u' /run/secrets/tok; cp /run/secrets/tok /copied", ["type=secret,id=tok"]);
    expect(r.out).toBe("s3cr3t-value\n400 0\n");
    expect(paths(r.entries)).toEqual(["copied"]); // what the RUN wrote on purpose, but no run/ or run/secrets stubs
    await expect(access(join(rootfs, "run"))).rejects.toThrow();
  });

  test("secret with target, uid and mode; and as an env var", async () => {
    process.env.TSBUILD_TEST_SECRET = "from-env";
    secrets.set("e", { env: "TSBUILD_TEST_SECRET" });
    try {
      const r = await run('stat -c "%a %u" /etc/creds; echo "$TOKEN"; test -e /run/secrets/e || echo nofile', [
        "type=secret,id=tok,target=/etc/creds,uid=1000,mode=0440",
        "type=secret,id=e,env=TOKEN",
      ]);
      expect(r.out).toBe("440 1000\nfrom-env\nnofile\n");
      expect(r.entries).toEqual([]);
    } finally {
      delete process.env.TSBUILD_TEST_SECRET;
    }
  });

  test("a missing secret is skipped unless required", async () => {
    const r = await run("test -e /run/secrets/nope && echo present || echo absent", ["type=secret,id=nope"]);
    expect(r.out).toBe("absent\n");
    const err = await run("true", ["type=secret,id=nope,required=true"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err).toMatchObject({ code: "SECRET_NOT_FOUND" });
  });
});
