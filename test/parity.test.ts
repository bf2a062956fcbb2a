// The BuildKit parity corpus (fixtures/parity, recorded from BuildKit by scripts/parity-record.mjs): every case is
// built by tsbuild on the same busybox base, and the image's /report and its history must be what BuildKit produced.
import { chmod, cp, link, mkdir, readFile, readdir } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, tempDir, tsbuild } from "./helpers/cli.js";
import { exec } from "./helpers/tools.js";
// Shared with scripts/parity-record.mjs, so both sides list layers the same way.
import { archiveListing } from "../scripts/parity-layers.mjs";
import { storeWithBusybox } from "./helpers/busybox-image.js";

const CORPUS = join(REPO, "fixtures/parity");
const cases = (await readdir(CORPUS, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);

let dir: Awaited<ReturnType<typeof tempDir>>;
let root: string;
let baseHistory: number;
let baseLayers: number;

interface Inspected {
  Config: {
    config?: Record<string, unknown>;
    history?: { created_by?: string; empty_layer?: boolean }[];
    rootfs?: { diff_ids?: string[] };
  };
}
const inspect = async (image: string): Promise<Inspected> => {
  const r = await tsbuild(["inspect", "--root", root, image]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Inspected[])[0] as Inspected;
};
/** History as fixtures/parity/README.md describes it: created_by, newest first, empty entries marked. */
const historyLines = (img: Inspected): string[] =>
  (img.Config.history ?? []).map((h) => `${h.created_by ?? ""}${h.empty_layer ? "\t(empty_layer)" : ""}`).reverse();
/**
 * The config's own field order differs between BuildKit versions (Go struct order of the image spec they embed), so
 * top-level fields are compared sorted; maps inside (Labels, ExposedPorts, Volumes) keep their order, which must be
 * Go's sorted one.
 */
const configText = (c: Record<string, unknown>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(c).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), null, 2);

beforeAll(async () => {
  dir = await tempDir("parity-");
  root = join(dir.path, "store");
  await storeWithBusybox(root);
  const base = await inspect("busybox:local");
  baseHistory = historyLines(base).length;
  baseLayers = base.Config.rootfs?.diff_ids?.length ?? 0;
});
afterAll(async () => {
  await dir?.cleanup();
});

/** Lines of text files in a case dir, empty lines dropped. */
async function lines(file: string): Promise<string[]> {
  return existsSync(file) ? (await readFile(file, "utf8")).split("\n").filter((l) => l !== "") : [];
}

describe("BuildKit parity corpus", () => {
  it("has cases, each with BuildKit's recorded result", () => {
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const recorded = existsSync(join(CORPUS, c, "expected-error")) ? "buildkit-error.txt" : "history.txt";
      expect(existsSync(join(CORPUS, c, recorded)), `${c}/${recorded}`).toBe(true);
    }
  });

  // A case lists in `executors` the RUN sandboxes besides the default it must also match BuildKit under.
  const runs = cases.flatMap((name) => {
    const file = join(CORPUS, name, "executors");
    const extra = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
    return [{ name, executor: undefined as string | undefined }, ...extra.map((executor) => ({ name, executor }))];
  });
  for (const { name, executor } of runs) {
    it(executor ? `${name} (--executor ${executor})` : name, async () => {
      const src = join(CORPUS, name);
      const id = `${name}${executor ? `-${executor}` : ""}`;
      const ctx = join(dir.path, `ctx-${id}`);
      await mkdir(ctx);
      if (existsSync(join(src, "context"))) await cp(join(src, "context"), ctx, { recursive: true, verbatimSymlinks: true });
      for (const line of await lines(join(src, "context-modes"))) {
        const [mode, path] = line.split(/\s+/) as [string, string];
        await chmod(join(ctx, path), parseInt(mode, 8));
      }
      // `TARGET LINKNAME` lines: hard links git cannot keep.
      for (const line of await lines(join(src, "context-links"))) {
        const [target, name] = line.split(/\s+/) as [string, string];
        await link(join(ctx, target), join(ctx, name));
      }
      const buildArgs = (await lines(join(src, "build-args"))).flatMap((a) => ["--build-arg", a]);
      const out = join(dir.path, `out-${id}`);
      const tag = `parity/${id}:1`;
      const r = await tsbuild([
        "build",
        "--root",
        root,
        "-q",
        "-t",
        tag,
        ...(executor ? ["--executor", executor] : []),
        ...buildArgs,
        "-f",
        join(src, "Dockerfile"),
        "-o",
        `type=local,dest=${out}`,
        ctx,
      ]);
      // `expected-error`: BuildKit failed (its message in buildkit-error.txt); tsbuild must fail with this code, and
      // its message must contain the second line, when there is one.
      const expectedError = await lines(join(src, "expected-error"));
      if (expectedError.length > 0) {
        const [code, words] = expectedError as [string, string | undefined];
        expect(r.code, r.stderr).not.toBe(0);
        expect(r.stderr).toContain(`[${code}]`);
        if (words !== undefined) expect(r.stderr).toContain(words);
        expect(r.stderr).not.toMatch(/this is a bug|INTERNAL/);
        return;
      }
      expect(r.code, r.stderr).toBe(0);
      const img = await inspect(tag);
      if (existsSync(join(src, "expected.txt"))) expect(await readFile(join(out, "report"), "utf8")).toBe(await readFile(join(src, "expected.txt"), "utf8"));
      if (existsSync(join(src, "config.json")))
        expect(configText(img.Config.config ?? {})).toBe(configText(JSON.parse(await readFile(join(src, "config.json"), "utf8")) as Record<string, unknown>));
      const expectedHistory = await lines(join(src, "history.txt"));
      const fromScratch = /^FROM\s+scratch\b/im.test(await readFile(join(src, "Dockerfile"), "utf8"));
      const history = historyLines(img);
      // Docker 20.10's BuildKit leaves COPY/ADD flags (--chown, --from) out of history; current BuildKit writes
      // them, and so does tsbuild: those lines are compared without their flags.
      const strip = (l: string) => l.replace(/^(COPY|ADD)( --[a-z-]+=\S+)+ /, "$1 ");
      expect(history.slice(0, history.length - (fromScratch ? 0 : baseHistory)).map(strip)).toEqual(expectedHistory.map(strip));
      // The layers' members (scripts/parity-layers.mjs), for the cases that record them.
      if (existsSync(join(src, "layers.txt"))) {
        const saved = join(dir.path, `saved-${id}`);
        await mkdir(saved);
        const s = await tsbuild(["save", "--root", root, "-o", `${saved}.tar`, tag]);
        expect(s.code, s.stderr).toBe(0);
        await exec("tar", ["-xf", `${saved}.tar`, "-C", saved]);
        const listing = await archiveListing(saved, fromScratch ? 0 : baseLayers);
        expect(listing.join("\n") + "\n").toBe(await readFile(join(src, "layers.txt"), "utf8"));
      }
    });
  }
});
