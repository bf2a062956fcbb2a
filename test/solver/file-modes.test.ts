// File modes are never widened: 000, 001, 0400 and the setuid/setgid/sticky bits survive RUN (both snapshotters),
// COPY from the context, COPY --chmod, COPY --from, ADD of a local tar and a base image's own layers, as BuildKit keeps them.
import { createReadStream } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listLayer } from "../../src/layer/extract.js";
import { makeBusyboxArchive } from "../helpers/busybox-image.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { extendArchive, layerTar, type TarMember } from "../helpers/image-archive.js";

const MODES = [0o000, 0o001, 0o400, 0o4000, 0o2000, 0o1000, 0o4755, 0o2755];
const oct = (m: number) => m.toString(8).padStart(4, "0");

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
let project: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

/** Path → mode as the image's layers leave it (a later layer's entry wins), read from an OCI layout directory. */
async function imageModes(layout: string): Promise<Map<string, number>> {
  const blob = (d: string) => join(layout, "blobs", ...d.split(":"));
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests.at(-1)!.digest), "utf8")) as { layers: { digest: string }[] };
  const modes = new Map<string, number>();
  for (const l of manifest.layers) for await (const e of listLayer(createReadStream(blob(l.digest)))) modes.set(e.path, e.mode);
  return modes;
}

async function buildModes(extra: string[]): Promise<Map<string, number>> {
  const layout = join(dir.path, `oci-${Math.random().toString(36).slice(2)}`);
  const res = await r(["build", "--progress", "plain", "--output", `type=oci,dest=${layout},tar=false`, ...extra, project]);
  expect(res.code, res.stderr).toBe(0);
  return imageModes(layout);
}

function expectModes(modes: Map<string, number>, prefix: string, opts: { dirs?: boolean } = {}): void {
  for (const m of MODES) {
    expect(oct(modes.get(`${prefix}f${oct(m)}`) ?? -1), `${prefix}f${oct(m)}`).toBe(oct(m));
    if (opts.dirs !== false) expect(oct(modes.get(`${prefix}d${oct(m)}`) ?? -1), `${prefix}d${oct(m)}/`).toBe(oct(m));
  }
}

beforeAll(async () => {
  dir = await tempDir("tsbuild-modes-");
  root = join(dir.path, "store");
  // The base image: busybox plus a layer with every mode, written by tar-stream (not by tsbuild), and a 000 /etc/shadow.
  const members: TarMember[] = [{ name: "b/", type: "directory", mode: 0o755 }];
  for (const m of MODES) members.push({ name: `b/f${oct(m)}`, mode: m, content: "base\n" }, { name: `b/d${oct(m)}/`, type: "directory", mode: m });
  members.push({ name: "etc/", type: "directory", mode: 0o755 }, { name: "etc/shadow", mode: 0o000, content: "root:*:1::::::\n" });
  const archive = join(dir.path, "modes-base.tar");
  await extendArchive(await makeBusyboxArchive(), archive, [await layerTar(members)], "modes:base");
  const loaded = await r(["load", "-i", archive]);
  expect(loaded.code, loaded.stderr).toBe(0);

  project = join(dir.path, "proj");
  await mkdir(join(project, "ctx"), { recursive: true });
  for (const m of MODES) {
    await writeFile(join(project, "ctx", `f${oct(m)}`), "ctx\n");
    await chmod(join(project, "ctx", `f${oct(m)}`), m);
    await mkdir(join(project, "ctx", `d${oct(m)}`));
  }
  await writeFile(join(project, "ctx/d0400/inner"), "inner\n");
  // chmod after filling, deepest first (a 000 dir is still writable by root, but keep it honest).
  for (const m of MODES) await chmod(join(project, "ctx", `d${oct(m)}`), m);
  const tarMembers: TarMember[] = [];
  for (const m of MODES) tarMembers.push({ name: `f${oct(m)}`, mode: m, content: "tar\n" }, { name: `d${oct(m)}/`, type: "directory", mode: m });
  await writeFile(join(project, "modes.tar"), await layerTar(tarMembers));
  await writeFile(
    join(project, "Dockerfile"),
    [
      "FROM modes:base AS run",
      `RUN mkdir /r && for m in ${MODES.map(oct).join(" ")}; do echo x > /r/f$m; chmod $m /r/f$m; mkdir /r/d$m; chmod $m /r/d$m; done`,
      "RUN chmod 000 /etc/group",
      "RUN echo 'extra:*:1::::::' >> /etc/shadow",
      "COPY ctx/ /c/",
      "COPY --chmod=000 ctx/f0400 /chm/file",
      "COPY --chmod=000 ctx/d0400 /chm/dir",
      "COPY --chmod=4755 ctx/f0400 /chm/setuid",
      "ADD modes.tar /add/",
      "FROM modes:base",
      "COPY --from=run /r/ /from/",
      "",
    ].join("\n"),
  );
});
afterAll(async () => {
  await dir?.cleanup();
});

describe("file modes are kept exactly", () => {
  for (const [snapshotter, executor] of [
    ["overlay", "crun"],
    ["copy", "crun"],
    ["overlay", "bwrap"],
  ] as const) {
    it(`RUN, COPY, COPY --chmod, ADD of a tar and the base layers (--snapshotter ${snapshotter}, --executor ${executor})`, async () => {
      const modes = await buildModes(["--target", "run", "--no-cache", "--snapshotter", snapshotter, "--executor", executor]);
      expectModes(modes, "b/"); // base layers, re-exported
      expectModes(modes, "r/"); // RUN
      expectModes(modes, "c/"); // COPY from the context
      expectModes(modes, "add/"); // ADD of a local tar
      expect(oct(modes.get("etc/group") ?? -1)).toBe("0000"); // metadata-only change by RUN
      expect(oct(modes.get("etc/shadow") ?? -1)).toBe("0000"); // appended to by RUN: still 000
      expect(oct(modes.get("chm/file") ?? -1)).toBe("0000");
      expect(oct(modes.get("chm/dir") ?? -1)).toBe("0000");
      expect(oct(modes.get("chm/dir/inner") ?? -1)).toBe("0000");
      expect(oct(modes.get("chm/setuid") ?? -1)).toBe("4755");
    });
  }

  it("COPY --from another stage", async () => {
    const modes = await buildModes(["--snapshotter", "overlay"]);
    expectModes(modes, "from/");
  });
});
