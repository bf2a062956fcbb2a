// docker buildx flags CI scripts pass (issue 16, first part): --label, --iidfile, --network, --add-host, --rm/--force-rm,
// through the real CLI, and their bad values as usage errors naming the flag.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";

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

beforeAll(async () => {
  dir = await tempDir("tsbuild-buildflags-");
  root = join(dir.path, "store");
  const loaded = await r(["load", "-i", await makeBusyboxArchive(dir.path)]);
  expect(loaded.code, loaded.stderr).toBe(0);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("build flags from docker buildx", () => {
  it("--label sets image labels over the Dockerfile's; --iidfile gets the image id; --rm and --force-rm are accepted", async () => {
    const ctx = await project("FROM scratch\nLABEL a=1 keep=yes\n");
    const iid = join(dir.path, "iid");
    const res = await r(["build", "-q", "--rm", "--force-rm", "--label", "a=2", "--label", "b=x=y", "--iidfile", iid, "-t", "labels:1", ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(await readFile(iid, "utf8")).toBe(res.stdout.trim());
    const info = JSON.parse((await r(["inspect", "labels:1"])).stdout)[0];
    expect(info.Config.config.Labels).toEqual({ a: "2", keep: "yes", b: "x=y" });
  });

  it("--network sets the network of RUN steps that do not choose one; --network host needs no --allow", async () => {
    const ctx = await project("FROM busybox:local\nRUN echo IF\"\"ACES=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,)\n");
    const ifaces = (out: string) => /IFACES=(\S*)/.exec(out)?.[1]?.split(",").filter(Boolean);
    const none = await r(["build", "--progress=plain", "--no-cache", "--network", "none", ctx]);
    expect(none.code, none.stderr).toBe(0);
    expect(ifaces(none.stderr)).toEqual(["lo"]);
    const host = await r(["build", "--progress=plain", "--no-cache", "--network", "host", ctx]);
    expect(host.code, host.stderr).toBe(0);
    const hostIfaces = (await readFile("/proc/net/dev", "utf8"))
      .split("\n")
      .slice(2)
      .map((l) => l.split(":")[0]?.trim())
      .filter((x): x is string => !!x && !x.startsWith("veth"));
    expect(ifaces(host.stderr)?.filter((x) => !x.startsWith("veth"))).toEqual(hostIfaces.sort());
  });

  it("--add-host entries are in every RUN's /etc/hosts, are part of the step's key, and never reach the image", async () => {
    const ctx = await project("FROM busybox:local\nRUN --network=none grep db.internal /etc/hosts\n");
    const out = join(dir.path, "hosts-out");
    const res = await r([
      "build",
      "--progress=plain",
      "--add-host",
      "db.internal:10.1.2.3",
      "--add-host",
      "v6.internal=[fd00::1]",
      "-o",
      `type=local,dest=${out}`,
      ctx,
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain("10.1.2.3\tdb.internal");
    await expect(readFile(join(out, "etc/hosts"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
    // Without the entry the step misses the cache (and grep fails): the hosts are in its key.
    const again = await r(["build", "--progress=plain", ctx]);
    expect(again.code).not.toBe(0);
  });

  it.each([
    [["--add-host", "nocolon"], /--add-host "nocolon": expected HOST:IP/],
    [["--add-host", "h:host-gateway"], /host-gateway is not supported/],
    [["--add-host", "h:999.1.1.1"], /is not an IP address/],
    [["--label", "=x"], /--label "=x": expected KEY=VALUE/],
    [["--network", "bridge"], /--network takes default, none or host/],
    [["--iidfile", ""], /--iidfile needs a file name/],
  ])("%j is a usage error naming the flag", async (flags, message) => {
    const ctx = await project("FROM scratch\n");
    const res = await r(["build", ...flags, ctx]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).not.toMatch(/this is a bug/);
  });
});

describe("-o type=tar", () => {
  it("writes the image's filesystem as one tar: modes and owners kept, no device nodes, sorted, deterministic", async () => {
    const ctx = await project(
      "FROM busybox:local\nRUN --network=none mkdir -p /data && echo hi > /data/f && chmod 0640 /data/f && chown 1000:1000 /data/f && mknod /evil b 7 0\n",
    );
    const a = join(dir.path, "a.tar");
    const b = join(dir.path, "b.tar");
    const res = await r(["build", "--progress=plain", "-o", `type=tar,dest=${a}`, ctx]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr, res.stderr).toMatch(/skipped 1 device node \(\/evil\)/);
    expect((await r(["build", "-q", "-o", `type=tar,dest=${b}`, ctx])).code).toBe(0);
    expect(await readFile(a)).toEqual(await readFile(b));
    const { execFile } = await import("node:child_process");
    const listing = await new Promise<string>((res2, rej) => execFile("tar", ["-tvf", a, "--numeric-owner"], (e, out) => (e ? rej(e) : res2(out))));
    expect(listing).toMatch(/^-rw-r----- 1000\/1000 .* data\/f$/m);
    expect(listing).toMatch(/ bin\/busybox$/m);
    expect(listing).not.toMatch(/ evil$/m);
    expect(listing).not.toMatch(/ \.\//);
  });
});

describe("buildx flags that are not supported yet", () => {
  it("--provenance=false and --sbom=false are accepted; other values are refused before the build", async () => {
    for (const [args, re] of [
      [["--provenance=true"], /--provenance=true: attestations are not supported yet \[UNSUPPORTED\]/],
      [["--sbom", "mode=max"], /--sbom=mode=max: attestations are not supported yet \[UNSUPPORTED\]/],
    ] as const) {
      const r = await tsbuild(["build", ...args, "/nonexistent-context"]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    const ok = await tsbuild(["build", "--provenance=false", "--sbom=false", "/nonexistent-context"]);
    expect(ok.stderr).not.toMatch(/UNSUPPORTED|UNKNOWN_FLAG/);
  });
});
