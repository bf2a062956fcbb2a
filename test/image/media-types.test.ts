// The shared media-type sets: what is a manifest, an index, a layer, and how a layer is compressed.
import { describe, expect, it } from "vitest";
import { isIndexMediaType, isLayerMediaType, isManifestMediaType, isUncompressedLayer, layerCompression } from "../../src/image/media-types.js";

describe("media types", () => {
  it.each([
    ["application/vnd.oci.image.index.v1+json", "index"],
    ["application/vnd.docker.distribution.manifest.list.v2+json", "index"],
    ["application/vnd.oci.image.manifest.v1+json", "manifest"],
    ["application/vnd.docker.distribution.manifest.v2+json", "manifest"],
    ["application/vnd.docker.distribution.manifest.v1+prettyjws", "other"],
    ["application/vnd.oci.image.config.v1+json", "other"],
    ["application/json", "other"],
  ])("%s is %s", (t, kind) => {
    expect(isIndexMediaType(t)).toBe(kind === "index");
    expect(isManifestMediaType(t)).toBe(kind === "manifest");
    expect(isLayerMediaType(t)).toBe(false);
  });
  it.each([
    ["application/vnd.oci.image.layer.v1.tar", "none"],
    ["application/vnd.oci.image.layer.v1.tar+gzip", "gzip"],
    ["application/vnd.oci.image.layer.v1.tar+zstd", "zstd"],
    ["application/vnd.docker.image.rootfs.diff.tar", "none"],
    ["application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"],
    ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"],
  ])("layer %s is compressed with %s", (t, c) => {
    expect(isLayerMediaType(t)).toBe(true);
    expect(layerCompression(t)).toBe(c);
    expect(isUncompressedLayer(t)).toBe(c === "none");
  });
  it("knows nothing of other types and of undefined", () => {
    expect(layerCompression("application/vnd.oci.image.config.v1+json")).toBeUndefined();
    expect(isIndexMediaType(undefined)).toBe(false);
    expect(isLayerMediaType(undefined)).toBe(false);
  });
});
