// Hard links stay hard links, as BuildKit keeps them: names of one inode in the build context, in a stage copied
// with COPY --from, made by a RUN, or inside a tar ADD unpacks (plain, gz, xz, bz2) share one inode in the rootfs
// and are one file entry plus tar hard-link entries in the layer. A hard link in a tar never reaches a host file.
import { link, lstat, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeWithBusybox } from "../helpers/busybox-image.js";
import { tempDir, tsbuild } from "../helpers/cli.js";
import { makeVictim, type Victim } from "../helpers/hostile.js";
import { layerTar } from "../helpers/image-archive.js";
import { exec } from "../helpers/tools.js";

let dir: { path: string; cleanup(): Promise<void> };
let root: string;
const r = (args: string[]) => tsbuild([...args, "--root", root]);

beforeAll(async () => {
  dir = await tempDir("tsbuild-hardlinks-");
  root = join(dir.path, "store");
  await storeWithBusybox(root);
});
afterAll(async () => {
  await dir?.cleanup();
});

/** `stat -c '%n %i %h'` lines → path → { ino, links }. */
function parseStat(report: string): Map<string, { ino: string; links: number }> {
  const out = new Map<string, { ino: string; links: number }>();
  for (const line of report.trim().split("\n")) {
    const [name, ino, links] = line.split(" ");
    out.set(name as string, { ino: ino as string, links: Number(links) });
  }
  return out;
}

/** Builds `project` into a local directory and returns it. */
async function buildLocal(project: string, name: string): Promise<string> {
  const out = join(dir.path, `out-${name}`);
  const res = await r(["build", "--progress", "plain", "-o", `type=local,dest=${out}`, project]);
  expect(res.code, res.stderr).toBe(0);
  return out;
}

/** `tar -tvf` of every layer of the image built from `project`, exported with -o type=oci. */
async function layerListings(project: string, name: string): Promise<string[]> {
  const tarball = join(dir.path, `${name}.oci.tar`);
  const res = await r(["build", "--progress", "plain", "-o", `type=oci,dest=${tarball}`, project]);
  expect(res.code, res.stderr).toBe(0);
  const layout = join(dir.path, `${name}-oci`);
  await mkdir(layout);
  await exec("tar", ["-xf", tarball, "-C", layout]);
  const blob = (d: string) => join(layout, "blobs", ...d.split(":"));
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests.at(-1)!.digest), "utf8")) as { layers: { digest: string }[] };
  const out: string[] = [];
  for (const l of manifest.layers) out.push((await exec("tar", ["-tvf", blob(l.digest)])).stdout);
  return out;
}

describe("hard links in COPY, COPY --from and RUN", () => {
  let project: string;
  beforeAll(async () => {
    project = join(dir.path, "copy");
    await mkdir(join(project, "d"), { recursive: true });
    await writeFile(join(project, "d/a"), "hello\n");
    await link(join(project, "d/a"), join(project, "d/b"));
    await writeFile(join(project, "f1"), "x\n");
    await link(join(project, "f1"), join(project, "f2"));
    await writeFile(
      join(project, "Dockerfile"),
      [
        "FROM busybox:local AS s",
        "RUN mkdir /m && echo data > /m/one && ln /m/one /m/two && ln /m/one /m/a0",
        "FROM busybox:local",
        "COPY d /d/",
        // Two source arguments: BuildKit's copier keeps links only within one source, so these are two files.
        "COPY f1 f2 /e/",
        "COPY . /all/",
        "COPY --from=s /m /m/",
        "RUN echo r > /r1 && ln /r1 /r2",
        "RUN stat -c '%n %i %h' /d/a /d/b /e/f1 /e/f2 /all/d/a /all/d/b /all/f1 /all/f2 /m/one /m/two /m/a0 /r1 /r2 > /report",
      ].join("\n") + "\n",
    );
  });

  it("keeps context hard links (one source), COPY --from's and RUN's as one inode in the rootfs", async () => {
    const out = await buildLocal(project, "copy");
    const st = parseStat(await readFile(join(out, "report"), "utf8"));
    const same = (a: string, b: string, links: number) => {
      expect(st.get(a)?.ino, `${a} and ${b}`).toBe(st.get(b)?.ino);
      expect(st.get(a)?.links, a).toBe(links);
    };
    same("/d/a", "/d/b", 2);
    same("/all/d/a", "/all/d/b", 2);
    same("/all/f1", "/all/f2", 2);
    same("/m/one", "/m/two", 3);
    same("/m/one", "/m/a0", 3);
    same("/r1", "/r2", 2);
    expect(st.get("/e/f1")?.ino).not.toBe(st.get("/e/f2")?.ino);
    expect(st.get("/e/f1")?.links).toBe(1);
    // The local export keeps them too.
    expect((await lstat(join(out, "d/a"))).ino).toBe((await lstat(join(out, "d/b"))).ino);
    expect((await lstat(join(out, "m/a0"))).nlink).toBe(3);
  });

  it("writes the second name as a tar hard-link entry to the bytewise-first name, size 0", async () => {
    const all = (await layerListings(project, "copy")).join("");
    const line = (name: string) => all.split("\n").find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} link to `)) ?? "";
    expect(line("d/b")).toMatch(/^hrw-r--r-- root\/root\s+0 .* d\/b link to d\/a$/);
    expect(line("all/f2")).toMatch(/ all\/f2 link to all\/f1$/);
    // BuildKit links every further name to the first one its sorted tar writes (m/a0).
    expect(line("m/one")).toMatch(/ m\/one link to m\/a0$/);
    expect(line("m/two")).toMatch(/ m\/two link to m\/a0$/);
    expect(line("m/a0")).toMatch(/^-rw-r--r-- root\/root\s+5 /);
    expect(line("r2")).toMatch(/ r2 link to r1$/);
    expect(line("e/f2")).toMatch(/^-rw-r--r-- root\/root\s+2 /);
  });

  it("a context file that becomes a hard link of another misses the cache", async () => {
    const p = join(dir.path, "relink");
    await mkdir(p);
    await writeFile(join(p, "a"), "same\n");
    await writeFile(join(p, "b"), "same\n");
    await writeFile(join(p, "Dockerfile"), "FROM busybox:local\nCOPY . /c/\nRUN stat -c '%n %i %h' /c/a /c/b > /report\n");
    const first = parseStat(await readFile(join(await buildLocal(p, "relink1"), "report"), "utf8"));
    expect(first.get("/c/a")?.links).toBe(1);
    await rm(join(p, "b"));
    await link(join(p, "a"), join(p, "b"));
    const second = parseStat(await readFile(join(await buildLocal(p, "relink2"), "report"), "utf8"));
    expect(second.get("/c/a")?.ino).toBe(second.get("/c/b")?.ino);
    expect(second.get("/c/a")?.links).toBe(2);
  });
});

describe("hard links in tars ADD unpacks", () => {
  it("keeps them for plain, gzip, xz and bzip2 tars made by GNU tar", async () => {
    const project = join(dir.path, "add");
    const src = join(dir.path, "tar-src");
    await mkdir(join(src, "t"), { recursive: true });
    await mkdir(project);
    await writeFile(join(src, "t/a"), "in a tar\n");
    await link(join(src, "t/a"), join(src, "t/b"));
    const kinds = { plain: "-cf", gz: "-czf", xz: "-cJf", bz2: "-cjf" } as const;
    for (const [k, flag] of Object.entries(kinds)) await exec("tar", [flag, join(project, `${k}.tar`), "-C", src, "t/a", "t/b"]);
    // GNU tar wrote the second name as a hard-link member.
    expect((await exec("tar", ["-tvf", join(project, "plain.tar")])).stdout).toMatch(/t\/b link to t\/a/);
    const names = Object.keys(kinds);
    await writeFile(
      join(project, "Dockerfile"),
      [
        "FROM busybox:local",
        ...names.map((k) => `ADD ${k}.tar /${k}/`),
        `RUN stat -c '%n %i %h' ${names.map((k) => `/${k}/t/a /${k}/t/b`).join(" ")} > /report`,
      ].join("\n") + "\n",
    );
    const st = parseStat(await readFile(join(await buildLocal(project, "add"), "report"), "utf8"));
    for (const k of names) {
      expect(st.get(`/${k}/t/a`)?.ino, k).toBe(st.get(`/${k}/t/b`)?.ino);
      expect(st.get(`/${k}/t/a`)?.links, k).toBe(2);
    }
    const layers = await layerListings(project, "add");
    for (const k of names) expect(layers.join(""), k).toMatch(new RegExp(` ${k}/t/b link to ${k}/t/a\\n`));
  });
});

describe("hostile hard links in an ADD tar", () => {
  let victim: Victim;
  beforeAll(async () => {
    victim = await makeVictim();
  });
  afterAll(async () => {
    await victim?.remove();
  });

  const cases: [string, string][] = [
    ["a relative path out of the destination", "../../../../../../../../../etc/passwd"],
    ["the victim's absolute host path", "VICTIM"],
    ["a name not in the archive", "nothere"],
    ["through a symlink to the host directory", "out/victim.txt"],
  ];
  for (const [what, target] of cases) {
    it(`never links to a host file: ${what}`, async () => {
      const project = join(dir.path, `hostile-${cases.findIndex((c) => c[0] === what)}`);
      await mkdir(project);
      const linkname = target === "VICTIM" ? victim.file : target;
      const passwd = await lstat("/etc/passwd");
      await writeFile(
        join(project, "evil.tar"),
        await layerTar([
          { name: "out", type: "symlink", mode: 0o777, linkname: victim.dir },
          { name: "evil", type: "link", mode: 0o644, linkname },
        ]),
      );
      await writeFile(join(project, "Dockerfile"), "FROM busybox:local\nADD evil.tar /x/\nRUN cat /x/evil > /report 2>&1 || true\n");
      const out = join(dir.path, `hostile-out-${cases.findIndex((c) => c[0] === what)}`);
      const res = await r(["build", "--progress", "plain", "-o", `type=local,dest=${out}`, project]);
      const after = await lstat("/etc/passwd");
      expect(after.nlink).toBe(passwd.nlink);
      expect(await victim.check()).toEqual([]);
      expect((await lstat(victim.file)).nlink).toBe(1);
      if (res.code === 0) {
        // Clamped: whatever /x/evil became, it is not a host file.
        const report = await readFile(join(out, "report"), "utf8");
        expect(report).not.toContain(victim.content.trim());
        expect(report).not.toMatch(/^root:/m);
      } else {
        expect(res.stderr).toMatch(/evil/);
        expect(res.stderr).toMatch(/hardlink|hard link|link/i);
        expect(res.stderr).not.toMatch(/^\s+at /m);
        console.log(
          res.stderr
            .split("\n")
            .filter((l) => /evil/.test(l))
            .join("\n"),
        );
      }
    });
  }
});
