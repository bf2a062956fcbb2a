import { describe, expect, it } from "vitest";
import { describePlan, needsUserNamespace, planIdMaps } from "../../src/cli/userns-reexec.js";

describe("needsUserNamespace", () => {
  it("re-executes an ordinary user's build-like commands only", () => {
    expect(needsUserNamespace(["build", "."], 1000, {})).toBe(true);
    expect(needsUserNamespace(["-t", "x", "."], 1000, {})).toBe(true);
    expect(needsUserNamespace(["prune"], 1000, {})).toBe(true);
    expect(needsUserNamespace(["build", "."], 0, {})).toBe(false);
    expect(needsUserNamespace(["doctor"], 1000, {})).toBe(false);
    expect(needsUserNamespace(["--version"], 1000, {})).toBe(false);
    // Store commands that only read or write the user's own blobs and records skip the re-exec's cost.
    expect(needsUserNamespace(["images"], 1000, {})).toBe(false);
    expect(needsUserNamespace(["push", "x"], 1000, {})).toBe(false);
    expect(needsUserNamespace(["du"], 1000, {})).toBe(true);
    expect(needsUserNamespace(["run", "x"], 1000, {})).toBe(true);
    expect(needsUserNamespace([], 1000, {})).toBe(false);
    // Never twice, whatever the child's uid turned out to be.
    expect(needsUserNamespace(["build", "."], 1000, { TSBUILD_USERNS: "single" })).toBe(false);
  });
});

describe("planIdMaps", () => {
  it("maps the user's own id to 0 and its subordinate ranges from 1 up", () => {
    const plan = planIdMaps(
      1001,
      1001,
      [
        { start: 300000, count: 65536 },
        { start: 500000, count: 10 },
      ],
      [{ start: 300000, count: 65536 }],
      [],
    );
    expect(plan).toEqual({
      kind: "subids",
      uidMap: ["0", "1001", "1", "1", "300000", "65536", "65537", "500000", "10"],
      gidMap: ["0", "1001", "1", "1", "300000", "65536"],
    });
    expect(describePlan(plan)).toBe("uids 0→1001, 1→300000+65536, 65537→500000+10; gids 0→1001, 1→300000+65536");
  });

  it("falls back to the user's own id without ranges or without newuidmap, saying why", () => {
    expect(planIdMaps(1002, 1002, [], [{ start: 1, count: 1 }], [])).toMatchObject({ kind: "single", why: "no /etc/subuid range for this user" });
    expect(planIdMaps(1002, 1002, [{ start: 1, count: 5 }], [{ start: 1, count: 5 }], ["newuidmap"])).toMatchObject({
      kind: "single",
      why: expect.stringContaining("apt-get install -y uidmap"),
    });
  });
});
