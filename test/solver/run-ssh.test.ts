// RUN --mount=type=ssh through the real CLI, under crun and bwrap: the host's real ssh-add (copied into the image
// with its libraries) lists, through the mounted socket, the key tsbuild's own ssh-agent holds (--ssh ID=KEY) or the
// key of an agent the test started (--ssh default); no key material in the image, optional ids left out, and the
// mount's id — not the host socket's path — in the cache key.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { requireTool } from "../helpers/tools.js";

const run = promisify(execFile);
let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let key: string;
let fingerprint: string;
let tools: string;
let agent: ChildProcess | undefined;
let agentSock: string;
let n = 0;
const r = (args: string[], env?: NodeJS.ProcessEnv) => tsbuild([...args, "--root", root], env ? { env } : {});

/** A context with ssh-add and the libraries it loads, so the RUN can use the host's real client. */
async function project(dockerfile: string): Promise<string> {
  const ctx = join(dir.path, `ctx-${n++}`);
  await mkdir(ctx, { recursive: true });
  await run("cp", ["-r", tools, join(ctx, "tools")]);
  await writeFile(join(ctx, "Dockerfile"), dockerfile);
  return ctx;
}

const SSH_ADD = "/tools/ld.so --library-path /tools /tools/ssh-add";

beforeAll(async () => {
  for (const t of ["crun", "bwrap", "ssh-agent", "ssh-add", "ssh-keygen"])
    await requireTool(t).catch(() => {
      throw new Error(`${t} is not installed: apt-get install -y ${t.startsWith("ssh") ? "openssh-client" : t === "bwrap" ? "bubblewrap" : t}`);
    });
  dir = await tempDir("tsbuild-runssh-");
  root = join(dir.path, "store");
  key = join(dir.path, "id_test");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "tsbuild-test-key", "-f", key]);
  fingerprint = (await run("ssh-keygen", ["-l", "-f", `${key}.pub`])).stdout.split(" ")[1] as string;
  tools = join(dir.path, "tools");
  await mkdir(tools);
  const ssh = (await run("sh", ["-c", "command -v ssh-add"])).stdout.trim();
  await copyFile(ssh, join(tools, "ssh-add"));
  const ldd = (await run("ldd", [ssh])).stdout;
  for (const m of ldd.matchAll(/(\/\S+\.so[.\d]*)/g)) {
    const lib = m[1] as string;
    await copyFile(lib, join(tools, /ld-linux/.test(lib) ? "ld.so" : basename(lib)));
  }
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
  // An agent of the test's own, for --ssh default ($SSH_AUTH_SOCK), stopped by its PID in afterAll.
  agentSock = join(dir.path, "agent.sock");
  agent = spawn("ssh-agent", ["-D", "-a", agentSock], { stdio: "ignore" });
  for (let i = 0; ; i++) {
    try {
      await run("ssh-add", ["-q", key], { env: { ...process.env, SSH_AUTH_SOCK: agentSock } });
      break;
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((res) => setTimeout(res, 10));
    }
  }
});
afterAll(async () => {
  if (agent?.pid !== undefined && agent.exitCode === null) agent.kill("SIGTERM");
  await dir?.cleanup();
});

describe.each(["crun", "bwrap"])("RUN --mount=type=ssh under --executor %s", (executor) => {
  it("--ssh ID=KEY: the RUN's ssh-add lists the key through BuildKit's default socket path; nothing of it in the image", async () => {
    const ctx = await project(
      `FROM busybox:local\nCOPY tools /tools\nRUN --mount=type=ssh,id=deploy ${SSH_ADD} -l > /out.txt; echo "sock=$SSH_AUTH_SOCK" >> /out.txt; ls -l /run/buildkit >> /out.txt\n`,
    );
    const out = join(dir.path, `out-${n++}`);
    const res = await r(["build", "--progress=plain", "--executor", executor, "--ssh", `deploy=${key}`, "-o", `type=local,dest=${out}`, ctx]);
    expect(res.code, res.stderr).toBe(0);
    const text = await readFile(join(out, "out.txt"), "utf8");
    expect(text).toContain(fingerprint);
    expect(text).toContain("tsbuild-test-key");
    expect(text).toContain("sock=/run/buildkit/ssh_agent.0");
    // The socket was a mount: no stub of it (nor of its key) is left in the image.
    expect((await readdir(out)).includes("run") ? await readdir(join(out, "run")) : []).not.toContain("buildkit");
    const secret = (await readFile(key, "utf8")).split("\n")[1] as string;
    expect(res.stderr).not.toContain(secret);
  });

  it("--ssh default uses $SSH_AUTH_SOCK; target= and a second mount get their own sockets", async () => {
    const ctx = await project(
      `FROM busybox:local\nCOPY tools /tools\nRUN --mount=type=ssh,target=/s/agent --mount=type=ssh,id=other SSH_AUTH_SOCK=/s/agent ${SSH_ADD} -l > /out.txt; echo "sock=$SSH_AUTH_SOCK" >> /out.txt; test -S /run/buildkit/ssh_agent.1 && echo second >> /out.txt\n`,
    );
    const out = join(dir.path, `out-${n++}`);
    const res = await r(
      ["build", "--progress=plain", "--executor", executor, "--ssh", "default", "--ssh", `other=${agentSock}`, "-o", `type=local,dest=${out}`, ctx],
      {
        ...process.env,
        SSH_AUTH_SOCK: agentSock,
      },
    );
    expect(res.code, res.stderr).toBe(0);
    const text = await readFile(join(out, "out.txt"), "utf8");
    expect(text).toContain(fingerprint);
    expect(text).toContain("sock=/s/agent");
    expect(text).toContain("second");
  });
});

describe("ssh ids and the cache", () => {
  it("an optional ssh id nobody gave is left out (SSH_AUTH_SOCK is still set), as in BuildKit", async () => {
    const ctx = await project(`FROM busybox:local\nRUN --mount=type=ssh echo "S""OCK=$SSH_AUTH_SOCK" && test ! -e $SSH_AUTH_SOCK && echo AB""SENT\n`);
    const res = await r(["build", "--progress=plain", "--executor", "crun", ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain("SOCK=/run/buildkit/ssh_agent.0");
    expect(res.stderr).toContain("ABSENT");
  });

  it("required=true without the id fails naming the line and the flag", async () => {
    const ctx = await project(`FROM busybox:local\nRUN --mount=type=ssh,id=gh,required=true true\n`);
    const res = await r(["build", "--progress=plain", "--executor", "crun", ctx]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/Dockerfile:2:1: .*ssh id "gh"/);
    expect(res.stderr).toContain("--ssh gh=");
  });

  it("the key is the mount's id: another socket or key for the same id hits the cache", async () => {
    const ctx = await project(`FROM busybox:local\nRUN --mount=type=ssh,id=k echo built-${n}\n`);
    const first = await r(["build", "--progress=plain", "--executor", "crun", "--ssh", `k=${key}`, ctx]);
    expect(first.code, first.stderr).toBe(0);
    const again = await r(["build", "--progress=plain", "--executor", "crun", "--ssh", `k=${agentSock}`, ctx]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/CACHED/);
  });

  it("a key file that is not a key is a usage error naming it", async () => {
    const bogus = join(dir.path, "not-a-key");
    await writeFile(bogus, "hello\n");
    const ctx = await project(`FROM busybox:local\nRUN --mount=type=ssh true\n`);
    const res = await r(["build", "--progress=plain", "--executor", "crun", "--no-cache", "--ssh", `default=${bogus}`, ctx]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(bogus);
  });
});
