import { describe, expect, it } from "vitest";
import { idMapFingerprint, parseIdMap, unmappedOwnerError, unmappedUserError, userNamespaceInfo } from "../../src/util/user-namespace.js";
import { runtimeDir } from "../../src/util/runtime-dir.js";
import { subordinateRanges } from "../../src/util/subids.js";
import { mappedKey } from "../../src/snapshot/rootfs-snapshots.js";

const INITIAL = "         0          0 4294967295\n";
const SUBIDS = "         0       1001          1\n         1     300000      65536\n";
const SINGLE = "         0       1002          1\n";

describe("userNamespaceInfo", () => {
  it("real root is not rootless; an ordinary user is", () => {
    expect(userNamespaceInfo(0, INITIAL, INITIAL)).toMatchObject({ rootless: false, hostUid: 0, singleId: false });
    expect(userNamespaceInfo(1001, INITIAL, INITIAL)).toMatchObject({ rootless: true, hostUid: 1001 });
  });

  it("root of a rootless build's namespace is rootless, with the host uid it maps to", () => {
    const ns = userNamespaceInfo(0, SUBIDS, SUBIDS);
    expect(ns).toMatchObject({ rootless: true, hostUid: 1001, singleId: false });
    expect([ns.mapped(0), ns.mapped(1000), ns.mapped(65536), ns.mapped(65537)]).toEqual([true, true, true, false]);
    expect(userNamespaceInfo(0, SINGLE, SINGLE)).toMatchObject({ rootless: true, hostUid: 1002, singleId: true });
  });

  it("parses uid_map lines and skips junk", () => {
    expect(parseIdMap(SUBIDS + "bad line\n")).toEqual([
      { inside: 0, outside: 1001, count: 1 },
      { inside: 1, outside: 300000, count: 65536 },
    ]);
  });
});

describe("unmapped ids", () => {
  const chownErr = Object.assign(new Error("EINVAL: invalid argument, lchown '/x'"), { code: "EINVAL", syscall: "lchown" });

  it("turns a chown EINVAL in a single-id namespace into NO_SUBORDINATE_IDS with the usermod fix", () => {
    const e = unmappedOwnerError(chownErr, "COPY", userNamespaceInfo(0, SINGLE, SINGLE), { USER: "alice" });
    expect(e?.code).toBe("NO_SUBORDINATE_IDS");
    expect(e?.message).toMatch(/^COPY: /);
    expect(e?.hint).toContain("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice");
  });

  it("leaves other errors, and root builds, alone", () => {
    expect(unmappedOwnerError(chownErr, "COPY", userNamespaceInfo(0, INITIAL, INITIAL))).toBeUndefined();
    expect(unmappedOwnerError(new Error("x"), "COPY", userNamespaceInfo(0, SINGLE, SINGLE))).toBeUndefined();
  });

  it("refuses a RUN user or group outside the namespace", () => {
    const single = userNamespaceInfo(0, SINGLE, SINGLE);
    expect(unmappedUserError(0, [0], single)).toBeUndefined();
    expect(unmappedUserError(1000, [1000], single)?.message).toContain("uid 1000");
    expect(unmappedUserError(0, [0, 10], single)?.message).toContain("group 10");
    expect(unmappedUserError(1000, [1000], userNamespaceInfo(0, SUBIDS, SUBIDS))).toBeUndefined();
  });
});

describe("runtimeDir", () => {
  it("is /run/tsbuild for real root, per user otherwise, never shared", () => {
    expect(runtimeDir({}, userNamespaceInfo(0, INITIAL, INITIAL))).toBe("/run/tsbuild");
    const a = runtimeDir({}, userNamespaceInfo(0, SUBIDS, SUBIDS));
    const b = runtimeDir({}, userNamespaceInfo(0, SINGLE, SINGLE));
    expect(a).toMatch(/\/tsbuild-1001$/);
    expect(b).toMatch(/\/tsbuild-1002$/);
  });

  it("ignores an XDG_RUNTIME_DIR that is missing or not ours", () => {
    expect(runtimeDir({ XDG_RUNTIME_DIR: "/nonexistent/run" }, userNamespaceInfo(0, SUBIDS, SUBIDS))).toMatch(/\/tsbuild-1001$/);
    expect(runtimeDir({ XDG_RUNTIME_DIR: "relative" }, userNamespaceInfo(0, SUBIDS, SUBIDS))).toMatch(/\/tsbuild-1001$/);
  });
});

describe("subordinateRanges", () => {
  it("finds a user's ranges by name or uid, in order", () => {
    const text = "alice:100000:65536\nbob:200000:65536\n1001:400000:10\nalice:500000:0\nbroken\n";
    expect(subordinateRanges(text, "alice", 1000)).toEqual([{ start: 100000, count: 65536 }]);
    expect(subordinateRanges(text, "carol", 1001)).toEqual([{ start: 400000, count: 10 }]);
    expect(subordinateRanges(text, "dave", 1002)).toEqual([]);
  });
});

describe("idMapFingerprint and snapshot keys", () => {
  it("is empty for real root and tells mappings apart otherwise", () => {
    const key = "0123456789abcdef0123456789abcdef";
    expect(idMapFingerprint(INITIAL, INITIAL)).toBe("");
    expect(mappedKey(key, idMapFingerprint(INITIAL, INITIAL))).toBe(key);
    const a = mappedKey(key, idMapFingerprint(SUBIDS, SUBIDS));
    const b = mappedKey(key, idMapFingerprint(SINGLE, SINGLE));
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set([key, a, b]).size).toBe(3);
  });
});
