// Where the Dockerfile is (-f, else CONTEXT/Dockerfile, relative to the caller's cwd) and how messages name it.
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { locateDockerfile, readDockerfile } from "../../src/context/locate-dockerfile.js";

describe("locateDockerfile", () => {
  it.each([
    ["/w", undefined, undefined, "/w/Dockerfile", "Dockerfile"],
    ["/w", undefined, "app", "/w/app/Dockerfile", "app/Dockerfile"],
    ["/w", undefined, "/srv/ctx", "/srv/ctx/Dockerfile", "/srv/ctx/Dockerfile"],
    ["/w", "build/Dockerfile.dev", "app", "/w/build/Dockerfile.dev", "build/Dockerfile.dev"],
    ["/w", "/etc/Dockerfile", ".", "/etc/Dockerfile", "/etc/Dockerfile"],
    ["/w/sub", "../Dockerfile", undefined, "/w/Dockerfile", "/w/Dockerfile"],
  ])("cwd %s, -f %s, context %s → %s (shown as %s)", (cwd, file, context, path, display) => {
    expect(locateDockerfile(cwd, file, context)).toEqual({ path, display });
  });
});

describe("readDockerfile", () => {
  it("reads the file, and names a missing one as shown", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tsbuild-locate-"));
    try {
      await mkdir(join(dir, "app"));
      await writeFile(join(dir, "app", "Dockerfile"), "FROM scratch\n");
      expect(await readDockerfile(locateDockerfile(dir, undefined, "app"))).toBe("FROM scratch\n");
      await expect(readDockerfile(locateDockerfile(dir, "nope/Dockerfile", "app"))).rejects.toMatchObject({
        name: "BuildError",
        code: "DOCKERFILE_NOT_FOUND",
        message: "cannot read Dockerfile nope/Dockerfile",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
