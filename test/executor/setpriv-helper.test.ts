// The setpriv helper bwrap uses: which host files it binds (from ldd) and the arguments it is given.
import { describe, expect, test } from "vitest";
import { findSetprivHelper, parseLdd, setprivArgs } from "../../src/executor/setpriv-helper.js";

describe("setpriv helper", () => {
  test("parseLdd finds the libraries and the loader", () => {
    const out = [
      "\tlinux-vdso.so.1 (0x00007ffd)",
      "\tlibcap-ng.so.0 => /lib/x86_64-linux-gnu/libcap-ng.so.0 (0x00007f07)",
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f06)",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f08)",
    ].join("\n");
    expect(parseLdd(out)).toEqual({ libs: ["/lib/x86_64-linux-gnu/libcap-ng.so.0", "/lib/x86_64-linux-gnu/libc.so.6"], loader: "/lib64/ld-linux-x86-64.so.2" });
    expect(parseLdd("\tnot a dynamic executable\n")).toEqual({ libs: [] });
  });

  test("root keeps its ids; another user gets its gid, supplementary groups and uid", () => {
    expect(setprivArgs(["CAP_CHOWN", "CAP_KILL"], { uid: 0, gid: 0 })).toEqual(["--bounding-set=-all,+chown,+kill"]);
    expect(setprivArgs(["CAP_CHOWN"], { uid: 1000, gid: 50 })).toEqual(["--bounding-set=-all,+chown", "--regid=50", "--clear-groups", "--reuid=1000"]);
    expect(setprivArgs(["CAP_CHOWN"], { uid: 1000, gid: 50, additionalGids: [10, 20] })).toContain("--groups=10,20");
  });

  test("on this machine the helper is found and binds only absolute host paths under /dev/.tsbuild", async () => {
    const h = await findSetprivHelper();
    expect(h, "util-linux's setpriv and ldd are needed: apt-get install -y util-linux libc-bin").toBeDefined();
    for (const [src, dest] of h?.binds ?? []) {
      expect(src.startsWith("/")).toBe(true);
      expect(dest.startsWith("/dev/.tsbuild/")).toBe(true);
    }
    expect(h?.command(["--x"]).slice(-2)).toEqual(["--x", "--"]);
  });
});
