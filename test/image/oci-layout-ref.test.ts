// oci-layout://PATH[:TAG][@DIGEST] split as buildx's parseOCILayoutPath does, and written back unchanged.
import { describe, expect, it } from "vitest";
import { formatOciLayoutRef, isOciLayoutRef, parseOciLayoutRef } from "../../src/image/oci-layout-ref.js";

const D = `sha256:${"a".repeat(64)}`;

describe("parseOciLayoutRef", () => {
  it("takes a trailing @digest, then a trailing :tag, else the tag latest", () => {
    expect(parseOciLayoutRef("oci-layout:///l")).toEqual({ path: "/l", tag: "latest" });
    expect(parseOciLayoutRef("oci-layout://./l:v1")).toEqual({ path: "./l", tag: "v1" });
    expect(parseOciLayoutRef(`oci-layout:///l@${D}`)).toEqual({ path: "/l", tag: "latest", digest: D });
    expect(parseOciLayoutRef(`oci-layout:///l:v1@${D}`)).toEqual({ path: "/l", tag: "v1", digest: D });
  });

  it("keeps an @ or : that starts no digest or tag in the path", () => {
    expect(parseOciLayoutRef("oci-layout:///a@b/l")).toEqual({ path: "/a@b/l", tag: "latest" });
    expect(parseOciLayoutRef("oci-layout:///a:b/l")).toEqual({ path: "/a:b/l", tag: "latest" });
    // No digest after the @ (too short), so buildx reads the part after the last : as a tag.
    expect(parseOciLayoutRef("oci-layout:///l@sha256:xyz")).toEqual({ path: "/l@sha256", tag: "xyz" });
  });

  it("round-trips through formatOciLayoutRef and is told apart from image references", () => {
    const ref = { path: "/x/l", tag: "v2", digest: D };
    expect(parseOciLayoutRef(formatOciLayoutRef(ref))).toEqual(ref);
    expect(isOciLayoutRef("OCI-LAYOUT:///l")).toBe(true);
    expect(isOciLayoutRef("busybox:latest")).toBe(false);
  });
});
