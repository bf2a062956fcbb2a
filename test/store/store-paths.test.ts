import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultStoreRoot } from "../../src/store/store-paths.js";

describe("defaultStoreRoot", () => {
  it("prefers TSBUILD_ROOT, then XDG_DATA_HOME, then ~/.local/share", () => {
    expect(defaultStoreRoot({ TSBUILD_ROOT: "/r", XDG_DATA_HOME: "/x", HOME: "/h" })).toBe("/r");
    expect(defaultStoreRoot({ XDG_DATA_HOME: "/x", HOME: "/h" })).toBe(join("/x", "tsbuild"));
    expect(defaultStoreRoot({ HOME: "/h" })).toBe(join("/h", ".local", "share", "tsbuild"));
  });
});
