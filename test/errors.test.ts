// Error values: the code list the compiler checks against, and attaching a source range without changing the class.
import { describe, expect, it } from "vitest";
import { AbortError, attachRange, BuildError, ERROR_CODES, isErrorCode, RegistryError, TsbuildError, UsageError } from "../src/errors.js";
import { OverlayUnavailableError } from "../src/snapshot/mounts.js";
import type { SourceRange } from "../src/frontend/types.js";

const range: SourceRange = { file: "Dockerfile", start: { line: 3, column: 1 }, end: { line: 3, column: 20 } };

describe("ERROR_CODES", () => {
  it("is a sorted list of unique upper-case codes", () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    expect([...ERROR_CODES].sort()).toEqual([...ERROR_CODES]);
    for (const c of ERROR_CODES) expect(c).toMatch(/^[A-Z][A-Z0-9_]*$/);
    expect(isErrorCode("NO_MATCHING_PLATFORM")).toBe(true);
    expect(isErrorCode("NO_SUCH_CODE")).toBe(false);
  });
});

describe("attachRange", () => {
  it("keeps the class, code, message, hint and exit code, adds the range and keeps the original as cause", () => {
    const original = new RegistryError("AUTH_REQUIRED", "registry.example wants a login", { hint: "tsbuild login registry.example" });
    const withRange = attachRange(original, range);
    expect(withRange).toBeInstanceOf(RegistryError);
    expect(withRange).not.toBeInstanceOf(BuildError);
    expect(withRange).not.toBe(original);
    expect(withRange).toMatchObject({
      name: "RegistryError",
      code: "AUTH_REQUIRED",
      message: "registry.example wants a login",
      hint: "tsbuild login registry.example",
      range,
    });
    expect(withRange.cause).toBe(original);
    expect(withRange.stack).toBe(original.stack);
    expect(original.range).toBeUndefined();
  });
  it("keeps subclass fields and exit codes (UsageError 2, AbortError 130, OverlayUnavailableError.hostWide)", () => {
    expect(attachRange(new UsageError("BAD_FLAG_VALUE", "x"), range).exitCode).toBe(2);
    const abort = attachRange(new AbortError(), range);
    expect(abort).toBeInstanceOf(AbortError);
    expect(abort.exitCode).toBe(130);
    const overlay = new OverlayUnavailableError("OVERLAY_UNAVAILABLE", "no overlayfs");
    overlay.hostWide = false;
    const o = attachRange(overlay, range);
    expect(o).toBeInstanceOf(OverlayUnavailableError);
    expect(o.hostWide).toBe(false);
    expect(o.range).toBe(range);
  });
  it("leaves an error that already has a range alone", () => {
    const inner: SourceRange = { file: "Dockerfile", start: { line: 1, column: 1 }, end: { line: 1, column: 5 } };
    const e = new BuildError("UNKNOWN_STAGE", "no stage x", { range: inner });
    expect(attachRange(e, range)).toBe(e);
  });
  it("keeps the original cause chain reachable", () => {
    const root = new Error("ECONNRESET");
    const e = new TsbuildError("NETWORK_ERROR", "connection dropped", { cause: root });
    const r = attachRange(e, range);
    expect((r.cause as TsbuildError).cause).toBe(root);
  });
});
