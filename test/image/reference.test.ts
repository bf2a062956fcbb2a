import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { familiarName, normalizeName, parseReference } from "../../src/image/reference.js";

const D = "sha256:" + "ab".repeat(32);

describe("parseReference", () => {
  it.each([
    ["busybox", "docker.io", "library/busybox", "latest", undefined, "docker.io/library/busybox:latest", "busybox:latest"],
    ["busybox:1.36", "docker.io", "library/busybox", "1.36", undefined, "docker.io/library/busybox:1.36", "busybox:1.36"],
    ["user/img", "docker.io", "user/img", "latest", undefined, "docker.io/user/img:latest", "user/img:latest"],
    ["docker.io/library/hello:1.0", "docker.io", "library/hello", "1.0", undefined, "docker.io/library/hello:1.0", "hello:1.0"],
    ["index.docker.io/library/hello", "docker.io", "library/hello", "latest", undefined, "docker.io/library/hello:latest", "hello:latest"],
    ["docker.io/library/a/b:t", "docker.io", "library/a/b", "t", undefined, "docker.io/library/a/b:t", "library/a/b:t"],
    ["myreg:5000/a/b:t", "myreg:5000", "a/b", "t", undefined, "myreg:5000/a/b:t", "myreg:5000/a/b:t"],
    ["myreg:5000/a", "myreg:5000", "a", "latest", undefined, "myreg:5000/a:latest", "myreg:5000/a:latest"],
    ["localhost/x", "localhost", "x", "latest", undefined, "localhost/x:latest", "localhost/x:latest"],
    ["localhost:5000/x:v_1.2-3", "localhost:5000", "x", "v_1.2-3", undefined, "localhost:5000/x:v_1.2-3", "localhost:5000/x:v_1.2-3"],
    ["Registry.example.com/x", "Registry.example.com", "x", "latest", undefined, "Registry.example.com/x:latest", "Registry.example.com/x:latest"],
    [
      "ghcr.io/org/some_repo.name__x-y",
      "ghcr.io",
      "org/some_repo.name__x-y",
      "latest",
      undefined,
      "ghcr.io/org/some_repo.name__x-y:latest",
      "ghcr.io/org/some_repo.name__x-y:latest",
    ],
    [`busybox@${D}`, "docker.io", "library/busybox", undefined, D, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1.0@${D}`, "docker.io", "library/busybox", "1.0", D, `docker.io/library/busybox:1.0@${D}`, `busybox:1.0@${D}`],
    [`[::1]:5000/x:t`, "[::1]:5000", "x", "t", undefined, "[::1]:5000/x:t", "[::1]:5000/x:t"],
  ])("%s", (input, registry, repository, tag, digest, name, familiar) => {
    const r = parseReference(input);
    expect(r).toEqual({ registry, repository, name, familiar, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) });
    expect(normalizeName(input)).toBe(name);
    expect(familiarName(input)).toBe(familiar);
    // Normalisation is idempotent and the familiar form parses back to the same name.
    expect(normalizeName(name)).toBe(name);
    expect(normalizeName(familiar)).toBe(name);
  });

  it.each([
    ["", /empty/],
    ["Busybox", /invalid reference format: repository name must be lowercase \(write "busybox"/],
    ["user/Img", /repository name must be lowercase \(write "img"/],
    ["busybox:", /tag ""/],
    ["busybox:-x", /tag "-x"/],
    ["busybox:.x", /tag ".x"/],
    [`busybox:${"a".repeat(129)}`, /tag/],
    ["busybox:a b", /whitespace/],
    ["busybox@sha256:abc", /digest "sha256:abc"/],
    [`busybox@md5:${"a".repeat(32)}`, /digest/],
    ["a//b", /empty path component/],
    ["/busybox", /empty path component|empty/],
    ["busybox/", /empty path component/],
    ["a/-b", /path component "-b"/],
    ["a/b_", /path component "b_"/],
    ["a/b___c", /path component/],
    ["my_reg:5000/x", /registry "my_reg:5000"/],
    ["localhost:port/x", /registry/],
    ["ab".repeat(32), /image ID/],
    [`${"a".repeat(250)}/b`, /longer than 255/],
  ])("rejects %j", (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).code).toBe("INVALID_REFERENCE");
    expect((err as UsageError).message).toContain(JSON.stringify(input));
    expect((err as UsageError).message).toMatch(why);
  });
});
