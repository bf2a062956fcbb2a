import { describe, expect, test } from "vitest";
import { bwrapArgs, bwrapLauncher } from "../../src/executor/bwrap.js";
import type { ProcessSpec } from "../../src/executor/types.js";

describe("bwrapArgs", () => {
  const files = { hosts: "/b/hosts", resolvConf: "/b/resolv.conf" };
  const spec: ProcessSpec = { args: ["/bin/sh", "-c", "x"], env: ["A=1=2", "B="], cwd: "/w", uid: 0, gid: 0, network: "default" };

  const pairAfter = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

  test("root runs the command directly with Docker's capabilities and a clean environment", () => {
    const a = bwrapArgs(spec, "/root-fs", files);
    expect(a.slice(a.indexOf("--bind"), a.indexOf("--bind") + 3)).toEqual(["--bind", "/root-fs", "/"]);
    expect(a).not.toContain("--unshare-net");
    expect(a).toContain("--die-with-parent");
    expect(a.slice(a.indexOf("--") + 1)).toEqual(["/bin/sh", "-c", "x"]);
    // Without a device cgroup (the default policy) CAP_MKNOD goes: a node made in /dev could otherwise be opened.
    expect(pairAfter(a, "--cap-add")).toHaveLength(13);
    expect(pairAfter(a, "--cap-add")).not.toContain("CAP_MKNOD");
    expect(a).toContain("--remount-ro");
    expect(a.indexOf("--clearenv")).toBeLessThan(a.indexOf("--setenv"));
    expect(a.slice(a.indexOf("--setenv"), a.indexOf("--setenv") + 6)).toEqual(["--setenv", "A", "1=2", "--setenv", "B", ""]);
    expect(pairAfter(a, "--chdir")).toEqual(["/w"]);
  });

  test("an env entry without = is the variable with an empty value (BuildKit); a nameless one is dropped", () => {
    const a = bwrapArgs({ ...spec, env: ["BARE", "=x", "C=3"] }, "/r", files);
    const i = a.indexOf("--setenv");
    expect(a.slice(i, i + 6)).toEqual(["--setenv", "BARE", "", "--setenv", "C", "3"]);
    expect(a.filter((x) => x === "--setenv")).toHaveLength(2);
  });

  test("non-root goes through busybox nsenter; none unshares the network; extra mounts", () => {
    const a = bwrapArgs(
      {
        ...spec,
        uid: 1000,
        gid: 50,
        network: "none",
        hostname: "h",
        extraMounts: [
          { source: "/c", destination: "/cache", readonly: false },
          { source: "", destination: "/t", readonly: false, type: "tmpfs" },
        ],
      },
      "/r",
      files,
    );
    expect(a).toContain("--unshare-net");
    expect(pairAfter(a, "--hostname")).toEqual(["h"]);
    expect(a.slice(a.indexOf("--") + 1)).toEqual(["/dev/.tsbuild/busybox", "nsenter", "-G", "50", "-S", "1000", "--", "/bin/sh", "-c", "x"]);
    expect(a.join(" ")).toContain("--bind /c /cache");
    expect(a.join(" ")).toContain("--tmpfs /t");
  });
});

describe("bwrapLauncher", () => {
  test("parent-death signal first, then the parent check, the cgroup join and bwrap", () => {
    const argv = bwrapLauncher(4242, ["/cg/pids/x/cgroup.procs"], ["bwrap", "--args", "3"]);
    expect(argv.slice(0, 5)).toEqual(["setpriv", "--pdeathsig", "KILL", "--", "sh"]);
    expect(argv[6]).toContain('[ "$PPID" = "4242" ] || exit 125');
    expect(argv.slice(7)).toEqual(["tsbuild-sandbox", "/cg/pids/x/cgroup.procs", "--", "bwrap", "--args", "3"]);
  });
});
