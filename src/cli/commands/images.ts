// Image store commands: images, history, inspect, tag, rmi — thin wrappers over the store.
import { UsageError } from "../../errors.js";
import { flagBool, flagString, parseArgs } from "../args.js";
import { storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { openEngine } from "../../engine.js";
import { familiarName, normalizeName, parseReference } from "../../image/reference.js";
import { requireImage } from "../../solver/image-writer.js";
import type { Manifest, ImageConfig, Platform } from "../../image/types.js";
import { formatPlatform, parsePlatform } from "../../image/platform.js";
import { isIndexDescriptor, platformManifests } from "../../store/image-index.js";
import { humanSize, table, timeAgo, truncate } from "../format.js";

const PLATFORM_FLAG = {
  name: "platform",
  type: "string",
  value: "OS/ARCH[/VARIANT]",
  help: "which platform of a multi-platform image (default: this machine's)",
} as const;

/** --platform as findImage's option (absent: the host's platform). */
function platformOption(args: ReturnType<typeof parseArgs>): { platform?: Platform } {
  const p = flagString(args, "platform");
  return p ? { platform: parsePlatform(p) } : {};
}

const shortId = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);
const imageSize = (m: Manifest) => m.layers.reduce((n, l) => n + l.size, 0);

export const imagesCommand: Command = {
  name: "images",
  usage: "tsbuild images [flags]",
  summary: "List the images in the local store.",
  flags: [
    { name: "quiet", short: "q", type: "boolean", help: "print only image ids" },
    { name: "format", type: "string", value: "json", help: "json: one JSON object per image" },
    { name: "no-trunc", type: "boolean", help: "full image ids" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "images");
    if (args.positionals.length > 0) throw new UsageError("BAD_ARGS", "`tsbuild images` takes no arguments");
    const engine = openEngine({ root: await storeRootFlag(args) });
    type Row = { repo: string; tag: string; id: string; created?: string; size: number; platforms: string[]; sub?: Row[] };
    const rows: Row[] = [];
    for (const r of await engine.images.list()) {
      const ref = parseReference(r.name);
      const fam = familiarName(r.name);
      const repo = ref.tag ? fam.slice(0, fam.length - ref.tag.length - 1) : (fam.split("@")[0] ?? fam);
      // A multi-platform name (an index): its row is the index, with one row per platform under it (docker images --tree).
      const sub: Row[] = [];
      for (const d of await platformManifests(engine.content, r.target)) {
        const manifest = await engine.content.readJson<Manifest>(d.digest);
        const config = await engine.content.readJson<ImageConfig>(manifest.config.digest);
        const platform = formatPlatform(d.platform as Platform);
        sub.push({
          repo: `└─ ${platform}`,
          tag: "",
          id: manifest.config.digest,
          ...(config.created ? { created: config.created } : {}),
          size: imageSize(manifest),
          platforms: [platform],
        });
      }
      const multi = isIndexDescriptor(r.target);
      const first = sub[0];
      rows.push({
        repo,
        tag: ref.tag ?? "<none>",
        id: multi || !first ? r.target.digest : first.id,
        ...(first?.created ? { created: first.created } : {}),
        size: sub.reduce((n, x) => n + x.size, 0),
        platforms: sub.map((x) => x.platforms[0] as string),
        ...(multi ? { sub } : {}),
      });
    }
    const fmt = flagString(args, "format");
    if (fmt !== undefined && fmt !== "json") throw new UsageError("BAD_FLAG_VALUE", `--format takes json, not ${JSON.stringify(fmt)}`);
    if (flagBool(args, "quiet")) {
      for (const id of new Set(rows.map((r) => (flagBool(args, "no-trunc") ? r.id : shortId(r.id))))) ctx.io.stdout.write(id + "\n");
      return;
    }
    if (fmt === "json") {
      for (const r of rows)
        ctx.io.stdout.write(
          JSON.stringify({ Repository: r.repo, Tag: r.tag, ID: r.id, CreatedAt: r.created ?? null, Size: r.size, Platforms: r.platforms }) + "\n",
        );
      return;
    }
    ctx.io.stdout.write(
      table(
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        rows
          .flatMap((r) => [r, ...(r.sub ?? [])])
          .map((r) => [r.repo, r.tag, flagBool(args, "no-trunc") ? r.id : shortId(r.id), timeAgo(r.created), humanSize(r.size)]),
      ),
    );
  },
};

export const historyCommand: Command = {
  name: "history",
  usage: "tsbuild history [flags] IMAGE",
  summary: "Show the history of an image, one row per step, newest first (like `docker history`).",
  flags: [
    { name: "no-trunc", type: "boolean", help: "do not truncate CREATED BY" },
    { name: "format", type: "string", value: "json", help: "json: one JSON object per row" },
    PLATFORM_FLAG,
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "history");
    if (args.positionals.length !== 1) throw new UsageError("BAD_ARGS", "`tsbuild history` takes exactly one image");
    const engine = openEngine({ root: await storeRootFlag(args) });
    const img = await requireImage(engine.content, engine.images, args.positionals[0] as string, platformOption(args));
    const layers = [...img.manifest.layers];
    const rows = (img.config.history ?? []).map((h) => {
      const size = h.empty_layer ? 0 : (layers.shift()?.size ?? 0);
      return { created: h.created, createdBy: h.created_by ?? "", size, comment: h.comment ?? "" };
    });
    rows.reverse();
    if (flagString(args, "format") === "json") {
      for (const r of rows)
        ctx.io.stdout.write(JSON.stringify({ CreatedAt: r.created ?? null, CreatedBy: r.createdBy, Size: r.size, Comment: r.comment }) + "\n");
      return;
    }
    const noTrunc = flagBool(args, "no-trunc");
    const id = shortId(img.manifest.config.digest);
    ctx.io.stdout.write(
      table(
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        rows.map((r, i) => [i === 0 ? id : "<missing>", timeAgo(r.created), noTrunc ? r.createdBy : truncate(r.createdBy, 45), humanSize(r.size), r.comment]),
      ),
    );
  },
};

export const inspectCommand: Command = {
  name: "inspect",
  usage: "tsbuild inspect IMAGE [IMAGE...]",
  summary: "Print the image config and manifest as JSON.",
  flags: [PLATFORM_FLAG, ...GLOBAL_FLAGS],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "inspect");
    if (args.positionals.length === 0) throw new UsageError("BAD_ARGS", "`tsbuild inspect` needs at least one image");
    const engine = openEngine({ root: await storeRootFlag(args) });
    const all = await engine.images.list();
    const out = [];
    for (const ref of args.positionals) {
      const img = await requireImage(engine.content, engine.images, ref, platformOption(args));
      out.push({
        Id: img.manifest.config.digest,
        RepoTags: all.filter((r) => r.target.digest === img.record.target.digest).map((r) => familiarName(r.name)),
        ManifestDigest: img.descriptor.digest,
        ...(img.platforms ? { IndexDigest: img.record.target.digest, Platforms: img.platforms.map(formatPlatform) } : {}),
        Created: img.config.created ?? null,
        Architecture: img.config.architecture,
        Os: img.config.os,
        ...(img.config.variant ? { Variant: img.config.variant } : {}),
        Size: imageSize(img.manifest),
        Config: img.config,
        Manifest: img.manifest,
      });
    }
    ctx.io.stdout.write(JSON.stringify(out, null, 4) + "\n");
  },
};

export const tagCommand: Command = {
  name: "tag",
  usage: "tsbuild tag SOURCE_IMAGE TARGET_IMAGE",
  summary: "Give an image another name.",
  flags: [...GLOBAL_FLAGS],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "tag");
    if (args.positionals.length !== 2) throw new UsageError("BAD_ARGS", "`tsbuild tag` takes a source and a target image name");
    const [src, dst] = args.positionals as [string, string];
    const target = normalizeName(dst);
    const engine = openEngine({ root: await storeRootFlag(args) });
    const img = await requireImage(engine.content, engine.images, src, { anyPlatform: true });
    await engine.images.set(target, img.record.target);
  },
};

export const rmiCommand: Command = {
  name: "rmi",
  usage: "tsbuild rmi IMAGE [IMAGE...]",
  summary: "Remove image names from the local store (blobs are reclaimed by prune).",
  flags: [...GLOBAL_FLAGS],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "rmi");
    if (args.positionals.length === 0) throw new UsageError("BAD_ARGS", "`tsbuild rmi` needs at least one image");
    const engine = openEngine({ root: await storeRootFlag(args) });
    for (const ref of args.positionals) {
      const img = await requireImage(engine.content, engine.images, ref, { anyPlatform: true });
      // By id: untag every name of that image; by name: just that name.
      const byName = img.record.name === safeNormalize(ref);
      const names = byName ? [img.record.name] : (await engine.images.list()).filter((r) => r.target.digest === img.record.target.digest).map((r) => r.name);
      for (const n of names) {
        await engine.images.delete(n);
        ctx.io.stdout.write(`Untagged: ${familiarName(n)}\n`);
      }
    }
  },
};

function safeNormalize(ref: string): string | undefined {
  try {
    return normalizeName(ref);
  } catch {
    return undefined;
  }
}
