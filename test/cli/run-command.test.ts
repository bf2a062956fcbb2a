// `tsbuild run` through the real CLI: docker run's command/env/user/workdir rules, -v, --network, -i/-t, exit codes,
// Ctrl-C, and that a run changes nothing in the store (image, build cache, kept snapshots). (test/cli/run.test.ts is RUN.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdir, readFile, readdir, lstat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { BIN, tempDir, tsbuild, tsbuildProcess } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { processesWith, uniqueSuffix } from "../helpers/hostile.js";
import { requireTool } from "../helpers/tools.js";

const execFileP = promisify(execFile);
let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[], env?: NodeJS.ProcessEnv) => tsbuild([...args, "--root", root], env ? { env } : {});
/** `tsbuild run` with --root before IMAGE (everything after IMAGE is the container's). */
const run = (args: string[], env?: NodeJS.ProcessEnv) => tsbuild(["run", "--root", root, ...args], env ? { env } : {});
const runProcess = (args: string[], opts: { input?: string } = {}) => tsbuildProcess(["run", "--root", root, ...args], opts);

async function buildImage(tag: string, dockerfile: string): Promise<void> {
  const p = join(dir.path, `proj-${tag.replace(/[^a-z0-9]/g, "-")}`);
  await mkdir(p, { recursive: true });
  await writeFile(join(p, "Dockerfile"), dockerfile);
  const res = await r(["build", "--progress", "plain", "-t", tag, p]);
  expect(res.code, res.stderr).toBe(0);
}

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir.path, "store");
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
  await buildImage("cmd:1", 'FROM busybox:local\nCMD ["echo", "from", "cmd"]\n');
  await buildImage("ep:1", 'FROM busybox:local\nENTRYPOINT ["echo", "ep"]\nCMD ["default"]\n');
  await buildImage("shell-ep:1", "FROM busybox:local\nENTRYPOINT echo shell-ep $0\n");
  await buildImage("nocmd:1", "FROM busybox:local\nENTRYPOINT []\n");
  await buildImage(
    "conf:1",
    'FROM busybox:local\nENV IMG=image KEEP=kept\nWORKDIR /srv/app\nRUN echo "extra:x:2000:app" >> /etc/group && echo data > /srv/app/file\nUSER app\nCMD ["id"]\n',
  );
}, 120_000);
afterAll(async () => {
  await dir?.cleanup();
});

/** crun/runc containers whose bundle is below this suite's dir (other suites on the machine may run their own). */
function runtimeContainers(): string[] {
  const out: string[] = [];
  for (const [bin, state] of [
    ["crun", "/run/tsbuild/crun"],
    ["runc", "/run/tsbuild/runc"],
  ] as const) {
    try {
      out.push(
        ...execFileSync(bin, ["--root", state, "list"], { encoding: "utf8" })
          .split("\n")
          .filter((l) => l.includes(dir.path)),
      );
    } catch {
      /* no state dir yet: no containers */
    }
  }
  return out;
}

/** Every path below `d` with its type, size and mode (what a run must leave as it was). */
async function tree(d: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(join(d, rel), { withFileTypes: true }).catch(() => [])).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(rel, e.name);
    const st = await lstat(join(d, p));
    out.push(`${p} ${st.mode.toString(8)} ${e.isDirectory() ? "" : st.size}`);
    if (e.isDirectory()) out.push(...(await tree(d, p)));
  }
  return out;
}

/** The store minus its lock and scratch areas, which every command uses. */
async function storeState(): Promise<string[]> {
  return (await tree(root)).filter((l) => !l.startsWith("tmp") && !l.startsWith("locks"));
}

describe("tsbuild run: command", () => {
  it("runs busybox:local echo hello world", async () => {
    const res = await run(["busybox:local", "echo", "hello", "world"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe("hello world\n");
  });

  it("flags after IMAGE belong to the command", async () => {
    const res = await run(["busybox:local", "echo", "-n", "--help", "-t"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe("--help -t");
  });

  it("combines ENTRYPOINT and CMD as docker run does", async () => {
    const cases: [string[], string][] = [
      [["cmd:1"], "from cmd\n"],
      [["cmd:1", "echo", "replaced"], "replaced\n"],
      [["ep:1"], "ep default\n"],
      [["ep:1", "a", "b"], "ep a b\n"],
      // --entrypoint drops the image's CMD
      [["--entrypoint", "/bin/echo", "ep:1"], "\n"],
      [["--entrypoint", "/bin/echo", "ep:1", "x"], "x\n"],
      [["--entrypoint", "", "ep:1", "echo", "reset"], "reset\n"],
      // shell-form ENTRYPOINT ignores CMD and takes the arguments as $0...
      [["shell-ep:1", "arg0"], "shell-ep arg0\n"],
    ];
    for (const [args, want] of cases) {
      const res = await run(args);
      expect(res.code, `${args.join(" ")}: ${res.stderr}`).toBe(0);
      expect(res.stdout, args.join(" ")).toBe(want);
    }
  });

  it("no command at all is docker's error, exit 125", async () => {
    for (const args of [["nocmd:1"], ["--entrypoint", "", "ep:1"]]) {
      const res = await run(args);
      expect(res.code).toBe(125);
      expect(res.stderr).toMatch(/no command specified.*\[NO_COMMAND\]/);
      expect(res.stderr).toMatch(/hint: give one/);
    }
  });

  it("tsbuild's own errors exit 125 with a message", async () => {
    const missing = await run(["nosuch:image", "true"]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/no such image: nosuch:image \[IMAGE_NOT_FOUND\]/);
    const noImage = await run([]);
    expect(noImage.code).toBe(125);
    expect(noImage.stderr).toMatch(/needs an image \[BAD_ARGS\]/);
    const badFlag = await run(["--nope", "busybox:local"]);
    expect(badFlag.code).toBe(125);
    expect(badFlag.stderr).toMatch(/UNKNOWN_FLAG/);
    const badNet = await run(["--network", "bridge2", "busybox:local", "true"]);
    expect(badNet.code).toBe(125);
    expect(badNet.stderr).toMatch(/--network takes default, none or host/);
  });

  it("shows its flags in --help", async () => {
    const res = await r(["run", "--help"]);
    expect(res.code).toBe(0);
    for (const f of [
      "--env",
      "--env-file",
      "--volume",
      "--workdir",
      "--user",
      "--entrypoint",
      "--network",
      "--interactive",
      "--tty",
      "--rm",
      "--executor",
      "--snapshotter",
    ])
      expect(res.stdout).toContain(f);
    expect(res.stdout).toMatch(/always removed/);
    const summary = await tsbuild(["--help"]);
    expect(summary.stdout).toMatch(/\n {2}run {8}Run a command/);
  });
});

describe("tsbuild run: environment, workdir, user", () => {
  it("takes ENV from the image, then --env-file, then -e (later wins; bare KEY from the environment)", async () => {
    const envFile = join(dir.path, "vars.env");
    await writeFile(envFile, '# a comment\n\n  FROMFILE=file value\nOVERRIDE=from-file\nHOSTVAR\nQUOTED="q"\n');
    const res = await run(["--env-file", envFile, "-e", "OVERRIDE=from-e", "-e", "IMG=changed", "-e", "FROMENV", "-e", "KEEP", "conf:1", "env"], {
      ...process.env,
      HOSTVAR: "host-value",
      FROMENV: "env-value",
      KEEP: undefined,
    });
    expect(res.code, res.stderr).toBe(0);
    const env = res.stdout.split("\n");
    expect(env).toContain("FROMFILE=file value");
    expect(env).toContain("OVERRIDE=from-e");
    expect(env).toContain("IMG=changed");
    expect(env).toContain("HOSTVAR=host-value");
    expect(env).toContain("FROMENV=env-value");
    expect(env).toContain('QUOTED="q"');
    // `-e KEEP` with KEEP unset on the host unsets the image's KEEP, as docker does
    expect(env.some((l) => l.startsWith("KEEP="))).toBe(false);
    expect(env).toContain("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    expect(env).toContain("HOME=/home/app");
    expect(env.find((l) => l.startsWith("HOSTNAME="))).toMatch(/^HOSTNAME=[0-9a-f]{12}$/);
  });

  it("a missing --env-file or a bad entry is an error naming it", async () => {
    const missing = await run(["--env-file", join(dir.path, "nope.env"), "busybox:local", "true"]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/env file .*nope\.env does not exist \[INPUT_NOT_FOUND\]/);
    const bad = join(dir.path, "bad.env");
    await writeFile(bad, "GOOD=1\nBAD KEY=2\n");
    const res = await run(["--env-file", bad, "busybox:local", "true"]);
    expect(res.code).toBe(125);
    expect(res.stderr).toMatch(/bad\.env:2: variable "BAD KEY" contains whitespace \[BAD_ENV\]/);
  });

  it("uses the image's WORKDIR and USER, with supplementary groups from /etc/group", async () => {
    const res = await run(["conf:1", "sh", "-c", "pwd; id; cat file"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe("/srv/app\nuid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\ndata\n");
  });

  it("-w creates a missing directory; -u takes a name, uid, uid:gid or name:group", async () => {
    const w = await run(["-w", "/new/place", "busybox:local", "sh", "-c", "pwd; ls -ld /new/place | cut -c1-10"]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toBe("/new/place\ndrwxr-xr-x\n");
    for (const [user, want] of [
      ["app", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)"],
      ["0", "uid=0(root) gid=0(root) groups=0(root)"],
      ["1234:4321", "uid=1234 gid=4321 groups=4321"],
      ["app:extra", "uid=1000(app) gid=2000(extra) groups=2000(extra)"],
    ]) {
      const res = await run(["-u", user as string, "conf:1", "id"]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout.trim(), user).toBe(want);
    }
    const unknown = await run(["-u", "nobody-here", "busybox:local", "id"]);
    expect(unknown.code).toBe(125);
    expect(unknown.stderr).toMatch(/unable to find user nobody-here.*\[UNKNOWN_USER\]/);
    const relative = await run(["-w", "rel", "busybox:local", "pwd"]);
    expect(relative.code).toBe(125);
    expect(relative.stderr).toMatch(/must be an absolute path/);
  });
});

describe("tsbuild run: volumes", () => {
  it("-v HOST:CTR:ro and rw", async () => {
    const host = join(dir.path, "vol");
    await mkdir(host, { recursive: true });
    await writeFile(join(host, "in.txt"), "from host\n");
    const rw = await run(["-v", `${host}:/data`, "busybox:local", "sh", "-c", "cat /data/in.txt && echo written > /data/out.txt"]);
    expect(rw.code, rw.stderr).toBe(0);
    expect(rw.stdout).toBe("from host\n");
    expect(await readFile(join(host, "out.txt"), "utf8")).toBe("written\n");
    const ro = await run(["-v", `${host}:/data:ro`, "busybox:local", "sh", "-c", "cat /data/in.txt; echo again > /data/out.txt"]);
    expect(ro.code).not.toBe(0);
    expect(ro.stdout).toBe("from host\n");
    expect(ro.stderr).toMatch(/Read-only file system/);
    expect(await readFile(join(host, "out.txt"), "utf8")).toBe("written\n");
  });

  it("a relative or missing host path is a clear error", async () => {
    const rel = await run(["-v", "data:/data", "busybox:local", "true"]);
    expect(rel.code).toBe(125);
    expect(rel.stderr).toMatch(/host path "data" must be absolute.*\[INVALID_VOLUME\]/);
    const missing = await run(["-v", `${dir.path}/no-such-dir:/data`, "busybox:local", "true"]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/the host path does not exist \[MOUNT_SOURCE_NOT_FOUND\]/);
    const ctr = await run(["-v", `${dir.path}:data`, "busybox:local", "true"]);
    expect(ctr.code).toBe(125);
    expect(ctr.stderr).toMatch(/container path "data" must be absolute/);
  });
});

describe("tsbuild run: the store is untouched", () => {
  it("a run that writes files changes neither the image nor the build cache", async () => {
    // A build FROM busybox:local keeps a snapshot of it: the run reads that one (as an overlay lower dir).
    const before = await storeState();
    const inspect = (await r(["inspect", "busybox:local"])).stdout;
    const du = (await r(["du"])).stdout;
    for (const snapshotter of ["overlay", "copy"]) {
      const res = await run(["--snapshotter", snapshotter, "busybox:local", "sh", "-c", "echo new > /etc/new-file && rm /bin/ls && mkdir /made && echo ok"]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toBe("ok\n");
    }
    const again = await run(["busybox:local", "sh", "-c", "test -e /etc/new-file || test -d /made || echo clean; test -x /bin/ls && echo ls-kept"]);
    expect(again.stdout).toBe("clean\nls-kept\n");
    expect(await storeState()).toEqual(before);
    expect((await r(["inspect", "busybox:local"])).stdout).toBe(inspect);
    expect((await r(["du"])).stdout).toBe(du);
    expect((await readdir(join(root, "tmp")).catch(() => [])).filter((n) => n.startsWith("run-"))).toEqual([]);
  });
});

for (const executor of ["crun", "bwrap"] as const) {
  describe(`tsbuild run on ${executor}`, () => {
    it("propagates the exit code; 127 for a command that is not there", async () => {
      const res = await runProcess(["--executor", executor, "busybox:local", "sh", "-c", "echo out; echo err >&2; exit 42"]);
      expect(res.code).toBe(42);
      expect(res.stdout).toBe("out\n");
      expect(res.stderr).toBe("err\n");
      const missing = await runProcess(["--executor", executor, "busybox:local", "no-such-command"]);
      expect(missing.code).toBe(127);
      const notExec = await runProcess(["--executor", executor, "busybox:local", "/etc/passwd"]);
      expect(notExec.code).toBe(126);
    });

    it("--network none has only lo", async () => {
      const res = await run(["--executor", executor, "--network", "none", "busybox:local", "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toBe("lo\n");
    });

    it("-u and -v work the same", async () => {
      const host = join(dir.path, `vol-${executor}`);
      await mkdir(host, { recursive: true });
      const res = await run(["--executor", executor, "-u", "app", "-v", `${host}:/out`, "conf:1", "sh", "-c", "id; echo hi > /out/f || echo denied"]);
      expect(res.code, res.stderr).toBe(0);
      // The host dir is root's 0755: uid 1000 may not write there, as under docker.
      expect(res.stdout).toBe("uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\ndenied\n");
    });

    it("-i passes piped stdin; without -i stdin is empty", async () => {
      const withI = await runProcess(["--executor", executor, "-i", "busybox:local", "cat"], { input: "hi\nthere\n" });
      expect(withI.code, withI.stderr).toBe(0);
      expect(withI.stdout).toBe("hi\nthere\n");
      const without = await runProcess(["--executor", executor, "busybox:local", "cat"], { input: "ignored\n" });
      expect(without.code, without.stderr).toBe(0);
      expect(without.stdout).toBe("");
    });

    it("-it under a terminal gives the container the terminal", async () => {
      await requireTool("script");
      const cmd = `${process.execPath} ${BIN} run --root ${root} --executor ${executor} -it busybox:local sh -c 'test -t 0 && test -t 1 && echo "tty $TERM"; exit 3'`;
      const res = await execFileP("script", ["-qec", cmd, "/dev/null"]).then(
        (o) => ({ code: 0, stdout: o.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
      );
      expect(res.stdout).toContain("tty xterm");
      expect(res.code).toBe(3);
    });

    it("Ctrl-C stops the container: exit 130, nothing left behind", async () => {
      const marker = `run-marker-${uniqueSuffix()}`;
      const child = spawn(
        process.execPath,
        [BIN, "run", "--root", root, "--executor", executor, "busybox:local", "sh", "-c", `echo started; sleep 1000; : ${marker}`],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      await new Promise<void>((resolve) => {
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          if (stdout.includes("started")) resolve();
        });
      });
      // sleep's argv carries the marker: it is running now, in the container
      expect((await processesWith(marker)).length).toBeGreaterThan(0);
      child.kill("SIGINT");
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect(code, stderr).toBe(130);
      expect(stderr).toMatch(/run cancelled/);
      expect(await processesWith(marker)).toEqual([]);
      expect((await readFile("/proc/mounts", "utf8")).split("\n").filter((l) => l.includes(dir.path))).toEqual([]);
      expect(runtimeContainers()).toEqual([]);
      expect((await readdir(join(root, "tmp")).catch(() => [])).filter((n) => n.startsWith("run-"))).toEqual([]);
    });
  });
}

describe("tsbuild run -it on runc", () => {
  it("gets a terminal runc makes and relays (runc pipes a foreground container's stdio otherwise)", async () => {
    await requireTool("script");
    const cmd = `${process.execPath} ${BIN} run --root ${root} --executor runc -it busybox:local sh -c 'test -t 0 && test -t 1 && echo "tty $TERM"; exit 3'`;
    const res = await execFileP("script", ["-qec", cmd, "/dev/null"]).then(
      (o) => ({ code: 0, stdout: o.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(res.stdout).toContain("tty xterm");
    expect(res.code).toBe(3);
  });
});

describe("tsbuild run -t without a terminal", () => {
  it("is docker's error", async () => {
    for (const flags of [["-t"], ["-it"]]) {
      const res = await runProcess([...flags, "busybox:local", "true"]);
      expect(res.code).toBe(125);
      expect(res.stderr).toMatch(/the input device is not a TTY \[NOT_A_TTY\]/);
      expect(res.stderr).toMatch(/hint: drop -t/);
    }
  });
});
