// Store hygiene commands: `prune` (remove unused cache data and blobs, never tagged images), `image prune`
// (docker's: with -a, image names too) and `du` (usage).
import { UsageError } from "../../errors.js";
import { flagBool, flagList, flagString, parseArgs } from "../args.js";
import { storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { humanSize, table, timeAgo } from "../format.js";
import { defaultStoreRoot } from "../../store/store-paths.js";
import { DURATION_FORMS, SIZE_FORMS, parseDuration, parseSize } from "../../store/size-text.js";
import type { PruneCategory, PruneItem, PruneOptions } from "../../store/gc.js";
import { openEngine } from "../../engine.js";
import { familiarName } from "../../image/reference.js";
import type { ImageConfig, Manifest } from "../../image/types.js";
import type { CommandContext } from "../context.js";

const CATEGORY_TEXT: Record<PruneCategory, string> = {
  tmp: "temp files and scratch dirs",
  "broken-records": "broken cache records",
  "step-records": "step cache records",
  "image-records": "image cache records",
  compressed: "compressed layer entries",
  blobs: "blobs",
  explain: "explain records",
  context: "context stat caches",
  "cache-mounts": "cache mounts",
  snapshots: "unpacked snapshots",
};

function pruneOptions(args: ReturnType<typeof parseArgs>): PruneOptions {
  const opts: PruneOptions = {};
  if (flagBool(args, "all")) opts.all = true;
  const keep = flagString(args, "keep-storage");
  if (keep !== undefined) {
    const n = parseSize(keep);
    if (n === undefined) throw new UsageError("BAD_FLAG_VALUE", `--keep-storage ${JSON.stringify(keep)} is not a size`, { hint: `give ${SIZE_FORMS}` });
    opts.keepStorage = n;
  }
  for (const f of flagList(args, "filter")) {
    const eq = f.indexOf("=");
    const key = eq < 0 ? f : f.slice(0, eq);
    if (key !== "until" || eq < 0)
      throw new UsageError("BAD_FLAG_VALUE", `--filter ${JSON.stringify(f)}: the only filter is until=DURATION`, {
        hint: `e.g. --filter until=24h; DURATION is ${DURATION_FORMS}`,
      });
    const ms = parseDuration(f.slice(eq + 1));
    if (ms === undefined) throw new UsageError("BAD_FLAG_VALUE", `--filter until=${f.slice(eq + 1)} is not a duration`, { hint: `give ${DURATION_FORMS}` });
    opts.until = opts.until === undefined ? ms : Math.min(opts.until, ms);
  }
  return opts;
}

function summarise(items: readonly PruneItem[]): { category: PruneCategory; count: number; size: number }[] {
  const by = new Map<PruneCategory, { count: number; size: number }>();
  for (const i of items) {
    const row = by.get(i.category) ?? { count: 0, size: 0 };
    row.count++;
    row.size += i.size;
    by.set(i.category, row);
  }
  return [...by].map(([category, r]) => ({ category, ...r }));
}

export const pruneCommand: Command = {
  name: "prune",
  usage: "tsbuild prune [--all] [--keep-storage SIZE] [--filter until=DURATION] [--dry-run]",
  summary: `Remove unused data from the store. Nothing reachable from a tagged image is ever removed.

By default only dangling data goes: blobs no tagged image, cache record or live compressed entry needs; cache
records whose blobs are missing (broken); compressed-layer entries whose layer or gzip blob is gone; everything in
tmp/ left by finished or killed builds (unmounting leftover mounts first).
  --filter until=DURATION  also removes build cache records and unpacked snapshots not used for DURATION
                           (24h, 90m, 7d, 1h30m)
  --keep-storage SIZE      then removes the unpacked snapshots (rebuilt on demand) and least-recently-used cache
                           records until the store is at most SIZE
                           (10GB, 512MiB, 1.5G; kB/MB/GB are powers of 1000, KiB/MiB/GiB and K/M/G of 1024)
  --all                    removes every build cache record, unpacked snapshot, the explain and context caches
                           and cache mounts
Blobs only the removed records held are removed with them. Prune refuses to run while a build uses the store
(STORE_BUSY); builds that start during a prune wait for it.`,
  flags: [
    { name: "all", short: "a", type: "boolean", help: "remove all build cache, not just dangling data" },
    { name: "keep-storage", type: "string", value: "SIZE", help: "remove least recently used cache until the store is at most SIZE" },
    { name: "filter", type: "list", value: "until=DURATION", help: "remove cache records not used for DURATION" },
    { name: "dry-run", type: "boolean", help: "print what would be removed, remove nothing" },
    { name: "force", short: "f", type: "boolean", help: "accepted for docker: tsbuild prune never asks" },
    { name: "verbose", type: "boolean", help: "accepted for buildx: the summary is always printed" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "prune");
    if (args.positionals.length > 0) throw new UsageError("BAD_ARGS", "`tsbuild prune` takes no arguments");
    const opts = pruneOptions(args);
    const root = (await storeRootFlag(args)) ?? defaultStoreRoot(ctx.io.env);
    await pruneAndReport(ctx, root, opts, flagBool(args, "dry-run"));
  },
};

/** Runs (or with dryRun plans) a prune and prints what went, by category, and the total. */
async function pruneAndReport(ctx: CommandContext, root: string, opts: PruneOptions, dryRun: boolean): Promise<void> {
  const gc = await import("../../store/gc.js");
  let items: readonly PruneItem[];
  let skipped: { item: PruneItem; reason: string }[] = [];
  const verb = dryRun ? "Would delete" : "Deleted";
  if (dryRun) items = (await gc.planPrune(root, opts)).items;
  else {
    const res = await gc.prune(root, opts, ctx.signal);
    items = res.removed;
    skipped = res.skipped;
  }
  for (const r of summarise(items)) ctx.io.stdout.write(`${verb} ${CATEGORY_TEXT[r.category]}: ${r.count} (${humanSize(r.size)})\n`);
  for (const s of skipped) ctx.io.stderr.write(`warning: kept ${s.item.path}: ${s.reason}\n`);
  const total = items.reduce((n, i) => n + i.size, 0);
  ctx.io.stdout.write(`Total ${dryRun ? "reclaimable" : "reclaimed"} space: ${humanSize(total)}\n`);
}

/** `label=K`, `label=K=V`, `label!=K`, `label!=K=V` as docker's image prune takes them. */
function labelTest(expr: string, negate: boolean): (labels: Readonly<Record<string, string>>) => boolean {
  const eq = expr.indexOf("=");
  const [k, v] = eq < 0 ? [expr, undefined] : [expr.slice(0, eq), expr.slice(eq + 1)];
  return (labels) => (k in labels && (v === undefined || labels[k] === v)) !== negate;
}

export const imagePruneCommand: Command = {
  name: "image prune",
  usage: "tsbuild image prune [-a [-f]] [--filter until=DURATION|label=K[=V]|label!=K[=V]]",
  summary: `docker's \`image prune\`. tsbuild keeps no untagged ("dangling") images: an image whose last name is removed
is only blobs. So without -a this removes those blobs, with the store's other dangling data (temp files, broken
cache records), exactly as \`tsbuild prune\` does; build cache records and the blobs they hold stay.
With -a it first removes every image name (tsbuild has no containers, so every image is unused, as docker's -a
counts), or those the filters select: until=DURATION (created longer ago than DURATION), label=K[=V], label!=K[=V].
-a needs -f: docker asks first, tsbuild never prompts. Build cache stays: \`tsbuild builder prune\` removes it.`,
  flags: [
    { name: "all", short: "a", type: "boolean", help: "remove image names too (all, or those the filters select)" },
    { name: "force", short: "f", type: "boolean", help: "do it without asking (needed with -a)" },
    { name: "filter", type: "list", value: "KEY=VALUE", help: "until=DURATION, label=K[=V], label!=K[=V] (with -a)" },
    { name: "dry-run", type: "boolean", help: "print what would be removed, remove nothing" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "image prune");
    if (args.positionals.length > 0) throw new UsageError("BAD_ARGS", "`tsbuild image prune` takes no arguments");
    const keep: ((img: { created: number; labels: Readonly<Record<string, string>> }) => boolean)[] = [];
    for (const f of flagList(args, "filter")) {
      const m = /^(until|label!?)=(.+)$/.exec(f);
      if (!m)
        throw new UsageError("BAD_FLAG_VALUE", `--filter ${JSON.stringify(f)}: image prune takes until=DURATION, label=K[=V] or label!=K[=V]`, {
          hint: "e.g. --filter until=24h",
        });
      const [, key, value] = m as unknown as [string, string, string];
      if (key === "until") {
        const ms = parseDuration(value);
        if (ms === undefined) throw new UsageError("BAD_FLAG_VALUE", `--filter until=${value} is not a duration`, { hint: `give ${DURATION_FORMS}` });
        keep.push((img) => img.created < Date.now() - ms);
      } else {
        const test = labelTest(value, key === "label!");
        keep.push((img) => test(img.labels));
      }
    }
    const dryRun = flagBool(args, "dry-run");
    const root = (await storeRootFlag(args)) ?? defaultStoreRoot(ctx.io.env);
    if (flagBool(args, "all")) {
      if (!flagBool(args, "force") && !dryRun)
        throw new UsageError("NEEDS_FORCE", "`tsbuild image prune -a` removes every image name the filters select, and tsbuild never asks first", {
          hint: "add -f to do it (tsbuild image prune -af), or --dry-run to see what would go",
        });
      const engine = openEngine({ root });
      const doomed: string[] = [];
      for (const r of await engine.images.list()) {
        const manifest = await engine.content.readJson<Manifest>(r.target.digest);
        const config = await engine.content.readJson<ImageConfig>(manifest.config.digest);
        const created = config.created ? Date.parse(config.created) : 0;
        if (keep.every((k) => k({ created: Number.isNaN(created) ? 0 : created, labels: config.config?.Labels ?? {} }))) doomed.push(r.name);
      }
      for (const n of doomed) {
        if (!dryRun) await engine.images.delete(n);
        ctx.io.stdout.write(`${dryRun ? "Would untag" : "Untagged"}: ${familiarName(n)}\n`);
      }
      // A dry run cannot plan the blobs those names free: the plan sees the names still there.
      if (dryRun) return;
    }
    await pruneAndReport(ctx, root, {}, dryRun);
  },
};

export const duCommand: Command = {
  name: "du",
  usage: "tsbuild du [--verbose] [--format json]",
  summary: `Show the store's disk usage, like \`docker system df\`: tagged images (their blobs), build cache (records and
the blobs only the cache holds), cache mounts, unreferenced blobs, temp space. Blobs shared by an image and the
cache count as the image's. RECLAIMABLE is what \`tsbuild prune --all\` frees.`,
  flags: [
    { name: "verbose", short: "v", type: "boolean", help: "also list every cache record with its size and last use" },
    { name: "format", type: "string", value: "json", help: "json: one JSON document" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "du");
    if (args.positionals.length > 0) throw new UsageError("BAD_ARGS", "`tsbuild du` takes no arguments");
    const fmt = flagString(args, "format");
    if (fmt !== undefined && fmt !== "json") throw new UsageError("BAD_FLAG_VALUE", `--format takes json, not ${JSON.stringify(fmt)}`);
    const root = (await storeRootFlag(args)) ?? defaultStoreRoot(ctx.io.env);
    const { diskUsage } = await import("../../store/disk-usage.js");
    const du = await diskUsage(root);
    const verbose = flagBool(args, "verbose");
    if (fmt === "json") {
      const { records, ...rest } = du;
      const out = verbose ? { ...rest, records: records.map((r) => ({ ...r, lastUsed: new Date(r.lastUsed).toISOString() })) } : rest;
      ctx.io.stdout.write(JSON.stringify(out, null, 2) + "\n");
      return;
    }
    const pct = (r: { size: number; reclaimable: number }) => (r.size > 0 ? ` (${Math.round((100 * r.reclaimable) / r.size)}%)` : "");
    const row = (name: string, r: { count: number; active?: number; size: number; reclaimable: number }) => [
      name,
      String(r.count),
      r.active === undefined ? "-" : String(r.active),
      humanSize(r.size),
      humanSize(r.reclaimable) + pct(r),
    ];
    ctx.io.stdout.write(
      table(
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        [
          row("Images", du.images),
          row("Build cache", du.buildCache),
          row("Cache mounts", du.cacheMounts),
          row("Snapshots", du.snapshots),
          row("Unreferenced", du.unreferenced),
          row("Temp", du.tmp),
          [
            "Total",
            "",
            "",
            humanSize(du.total),
            humanSize(du.buildCache.reclaimable + du.cacheMounts.reclaimable + du.snapshots.reclaimable + du.unreferenced.reclaimable + du.tmp.reclaimable),
          ],
        ],
      ),
    );
    if (verbose) {
      ctx.io.stdout.write("\nBuild cache records:\n");
      ctx.io.stdout.write(
        table(
          ["ID", "TYPE", "SIZE", "LAST USED", "STATE"],
          du.records.map((r) => [r.key.slice(0, 12), r.kind, humanSize(r.size), timeAgo(new Date(r.lastUsed).toISOString()), r.broken ? "broken" : "ok"]),
        ),
      );
    }
  },
};
