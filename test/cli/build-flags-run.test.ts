// --shm-size and --ulimit (issue 16) through the real CLI, under crun and bwrap: what a RUN sees in /dev/shm and
// `ulimit`, that the flags stay out of the step's cache key (as in BuildKit), and bad values as usage errors.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { rlimitBeyondOurs } from "../../src/executor/sandbox-policy.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { requireTool } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let n = 0;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

async function project(dockerfile: string): Promise<string> {
  const ctx = join(dir.path, `ctx-${n++}`);
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  return ctx;
}

/** The value a RUN printed as `KEY=value` (the RUN prints KE""Y so the echoed command line never matches). */
function printed(stderr: string, key: string): string | undefined {
  return new RegExp(`${key}=(\\S+)`).exec(stderr)?.[1];
}

const SHOW =
  'FROM busybox:local\nRUN echo SH""M=$(df -k /dev/shm | tail -n 1 | awk "{print \\$2}") NO""FILE=$(ulimit -n):$(ulimit -Hn) NP""ROC=$(ulimit -u):$(ulimit -Hu) CO""RE=$(ulimit -c):$(ulimit -Hc)\n';

beforeAll(async () => {
  for (const t of ["crun", "bwrap", "prlimit"]) await requireTool(t);
  dir = await tempDir("tsbuild-runflags-");
  root = join(dir.path, "store");
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe.each(["crun", "bwrap"])("--shm-size and --ulimit under --executor %s", (executor) => {
  it("/dev/shm is 64 MiB by default and --shm-size sets it", async () => {
    const ctx = await project(SHOW);
    const def = await r(["build", "--progress=plain", "--no-cache", "--executor", executor, ctx]);
    expect(def.code, def.stderr).toBe(0);
    expect(printed(def.stderr, "SHM")).toBe(String(64 * 1024));
    const big = await r(["build", "--progress=plain", "--no-cache", "--executor", executor, "--shm-size", "96m", ctx]);
    expect(big.code, big.stderr).toBe(0);
    expect(printed(big.stderr, "SHM")).toBe(String(96 * 1024));
    const bytes = await r(["build", "--progress=plain", "--no-cache", "--executor", executor, "--shm-size", String(8 * 1024 * 1024), ctx]);
    expect(printed(bytes.stderr, "SHM")).toBe(String(8 * 1024));
  });

  it("--ulimit sets soft and hard limits of the RUN's command; one value sets both; -1 is unlimited", async () => {
    const ctx = await project(SHOW);
    const res = await r([
      "build",
      "--progress=plain",
      "--no-cache",
      "--executor",
      executor,
      "--ulimit",
      "nofile=1000:2000",
      "--ulimit",
      "nproc=300",
      "--ulimit",
      "core=0:-1",
      ctx,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(printed(res.stderr, "NOFILE")).toBe("1000:2000");
    expect(printed(res.stderr, "NPROC")).toBe("300:300");
    expect(printed(res.stderr, "CORE")).toBe("0:unlimited");
  });

  it("applies to a non-root USER too, which cannot raise them", async () => {
    const ctx = await project(
      'FROM busybox:local\nUSER 1000:1000\nRUN echo NO""FILE=$(ulimit -n):$(ulimit -Hn); ulimit -n 3000 2>/dev/null && echo RAI""SED=yes || echo RAI""SED=no\n',
    );
    const res = await r(["build", "--progress=plain", "--no-cache", "--executor", executor, "--ulimit", "nofile=512:1024", ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(printed(res.stderr, "NOFILE")).toBe("512:1024");
    expect(printed(res.stderr, "RAISED")).toBe("no");
  });
});

describe("--shm-size and --ulimit and the cache", () => {
  it("do not enter the step's cache key (as in BuildKit): a rebuild with other values hits", async () => {
    const ctx = await project("FROM busybox:local\nRUN echo cached-step > /f\n");
    const first = await r(["build", "--progress=plain", "--shm-size", "32m", "--ulimit", "nofile=1000", ctx]);
    expect(first.code, first.stderr).toBe(0);
    const second = await r(["build", "--progress=plain", "--shm-size", "128m", "--ulimit", "nofile=2000", ctx]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/CACHED/);
  });
});

const status = await readFile("/proc/self/status", "utf8");
const canRaise = ((BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? "0"}`) >> 24n) & 1n) === 1n;

describe("a --ulimit above tsbuild's own hard limit", () => {
  it("is decided from CAP_SYS_RESOURCE and the process's own limits (both cases, whatever this machine has)", () => {
    const limits =
      "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n";
    const nofile = [{ name: "nofile" as const, soft: 30000, hard: 30000 }];
    // CapEff without bit 24 (CAP_SYS_RESOURCE): refused, naming our own hard limit.
    expect(rlimitBeyondOurs(nofile, limits, "CapEff:\t000001fffeffffff\n")).toEqual({ limit: nofile[0], ours: 20000 });
    // With it: the runtime can raise the limit, so nothing is refused.
    expect(rlimitBeyondOurs(nofile, limits, "CapEff:\t000001ffffffffff\n")).toBeUndefined();
    expect(rlimitBeyondOurs([{ name: "nofile", soft: 10, hard: 20000 }], limits, "CapEff:\t000001fffeffffff\n")).toBeUndefined();
  });

  it("without CAP_SYS_RESOURCE is a usage error before the build; with it, RUN gets the raised limit", async () => {
    const ours = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(await readFile("/proc/self/limits", "utf8"))?.[1]);
    const ctx = await project("FROM busybox:local\nRUN echo ran; ulimit -Hn\n");
    const res = await r(["build", "--progress=plain", "--no-cache", "--ulimit", `nofile=${ours + 1}`, ctx]);
    if (canRaise) {
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toMatch(new RegExp(`^#\\d+ \\d+\\.\\d{3} ${ours + 1}$`, "m"));
    } else {
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(`--ulimit nofile: hard limit ${ours + 1} is above tsbuild's own (${ours}), which it cannot raise here [BAD_FLAG_VALUE]`);
      expect(res.stderr).not.toContain("ran");
    }
  });
});

describe("bad --shm-size and --ulimit values", () => {
  it.each([
    [["--shm-size", "lots"], "--shm-size"],
    [["--shm-size", "-1m"], "--shm-size"],
    [["--ulimit", "nofile"], "--ulimit nofile: expected NAME=SOFT[:HARD]"],
    [["--ulimit", "files=10"], 'unknown limit "files"'],
    [["--ulimit", "nofile=ten"], '"ten" is not a whole number'],
    [["--ulimit", "nofile=1:2:3"], "too many values"],
    [["--ulimit", "nofile=2048:1024"], "soft limit must be less than or equal to the hard limit: 2048 > 1024"],
    [["--ulimit", "core=-1:100"], "soft limit must be less than or equal to the hard limit"],
  ])("%j is a usage error naming the flag", async (flags, message) => {
    const ctx = await project("FROM busybox:local\nRUN true\n");
    const res = await r(["build", ...flags, ctx]);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(message);
    expect(res.stderr).toContain("[BAD_FLAG_VALUE]");
    expect(res.stderr).not.toContain("this is a bug");
  });

  it("build --help lists both flags", async () => {
    const res = await tsbuild(["build", "--help"]);
    expect(res.stdout).toContain("--shm-size SIZE");
    expect(res.stdout).toContain("--ulimit NAME=SOFT[:HARD]");
  });
});
