// Image store commands: images, history, inspect, tag, rmi — thin wrappers over the store, with docker's flags
// (--filter, --format Go templates, -q, --digests, rmi -f).
import { UsageError } from "../../errors.js";
import { flagBool, flagList, flagString, parseArgs } from "../args.js";
import { storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { openEngine } from "../../engine.js";
import { familiarName, normalizeName, parseReference } from "../../image/reference.js";
import { findImage, requireImage } from "../../solver/image-writer.js";
import type { Manifest, ImageConfig, Platform } from "../../image/types.js";
import { formatPlatform, parsePlatform } from "../../image/platform.js";
import { isIndexDescriptor, platformManifests } from "../../store/image-index.js";
import { humanSize, table, timeAgo, truncate } from "../format.js";
import { goJson, parseGoTemplate, parseListFormat, renderList } from "../go-template.js";
import { IMAGE_ROW_HEADER, filterImages, imageRow, rfc3339, parseImageFilters, sortImages, type ImageEntry } from "../image-list.js";
import { dockerInspectObject } from "../image-inspect.js";

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

const FORMAT_HELP = "table (default), json (one object a line), or a Go template: '{{.Repository}}:{{.Tag}}', 'table {{.ID}}\\t{{.Size}}'";

export const imagesCommand: Command = {
  name: "images",
  usage: "tsbuild images [flags] [REPOSITORY[:TAG]]",
  summary: `List the images in the local store, newest first (like \`docker images\`).

REPOSITORY[:TAG] keeps the names it matches (docker's rules: \`busybox\` matches every tag of busybox,
\`busybox:1.*\` and \`team/*\` are patterns where * and ? never match /). Filters (--filter KEY=VALUE, repeatable):
  dangling=true|false     tsbuild keeps no untagged images (an image whose last name goes is only blobs, which
                          \`tsbuild image prune\` removes), so dangling=true lists nothing
  reference=PATTERN       names matching PATTERN, as the argument (several: any of them)
  label=KEY, label=KEY=VALUE  images whose config has the label (several: all of them)
  before=IMAGE, since=IMAGE   images created before / after IMAGE
Template fields: .Repository .Tag .ID .Digest .CreatedSince .CreatedAt .Size .VirtualSize, and .Containers
.SharedSize .UniqueSize (always N/A). DIGEST (--digests, .Digest) is the local manifest's digest, or the digest a
name was pulled by; tsbuild keeps layers uncompressed, so it is not a registry's digest.`,
  flags: [
    { name: "quiet", short: "q", type: "boolean", help: "print only image ids" },
    { name: "filter", short: "f", type: "list", value: "KEY=VALUE", help: "dangling, reference, label, before, since (see above)" },
    { name: "format", type: "string", value: "FORMAT", help: FORMAT_HELP },
    { name: "digests", type: "boolean", help: "add a DIGEST column" },
    { name: "no-trunc", type: "boolean", help: "full image ids" },
    { name: "all", short: "a", type: "boolean", help: "accepted for docker: tsbuild has no intermediate images to add" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "images");
    if (args.positionals.length > 1) throw new UsageError("BAD_ARGS", "`tsbuild images` takes at most one REPOSITORY[:TAG]");
    const filters = parseImageFilters(flagList(args, "filter"), args.positionals[0]);
    const format = parseListFormat(flagString(args, "format"));
    const noTrunc = flagBool(args, "no-trunc");
    const engine = openEngine({ root: await storeRootFlag(args) });
    const entries: ImageEntry[] = [];
    for (const r of await engine.images.list()) {
      // A multi-platform name (an index): its id is the index's, its size the platforms' sum, each platform a row under it.
      const subs: { platform: string; id: string; created?: string; size: number; labels: Record<string, string> }[] = [];
      for (const d of await platformManifests(engine.content, r.target)) {
        const manifest = await engine.content.readJson<Manifest>(d.digest);
        const config = await engine.content.readJson<ImageConfig>(manifest.config.digest);
        subs.push({
          platform: d.platform ? formatPlatform(d.platform as Platform) : "unknown",
          id: manifest.config.digest,
          ...(config.created ? { created: config.created } : {}),
          size: imageSize(manifest),
          labels: config.config?.Labels ?? {},
        });
      }
      const multi = isIndexDescriptor(r.target);
      const first = subs[0];
      entries.push({
        name: r.name,
        id: multi || !first ? r.target.digest : first.id,
        manifestDigest: r.target.digest,
        ...(first?.created ? { created: first.created } : {}),
        size: subs.reduce((sum, x) => sum + x.size, 0),
        labels: first?.labels ?? {},
        ...(multi ? { platforms: subs } : {}),
      });
    }
    const pivot = async (ref: string | undefined, key: string): Promise<ImageEntry | undefined> => {
      if (ref === undefined) return undefined;
      const img = await findImage(engine.content, engine.images, ref);
      if (!img) throw new UsageError("IMAGE_NOT_FOUND", `--filter ${key}=${ref}: no such image: ${ref}`, { hint: "run `tsbuild images` to list local images" });
      return {
        name: img.record.name,
        id: img.manifest.config.digest,
        manifestDigest: img.record.target.digest,
        size: 0,
        labels: {},
        ...(img.config.created ? { created: img.config.created } : {}),
      };
    };
    const kept = sortImages(filterImages(entries, filters, await pivot(filters.before, "before"), await pivot(filters.since, "since")));
    const rows = kept.map((e) => imageRow(e, { noTrunc }));
    if (flagBool(args, "quiet")) {
      for (const id of new Set(rows.map((r) => r.ID))) ctx.io.stdout.write(id + "\n");
      return;
    }
    if (format.kind === "json") {
      for (const r of rows) ctx.io.stdout.write(goJson(r) + "\n");
      return;
    }
    if (format.kind === "template") {
      // A bad field is an error even when nothing matched (the header row, or a row of headers, checks it).
      if (!format.table) format.template.execute(IMAGE_ROW_HEADER);
      ctx.io.stdout.write(renderList(format.template, format.table, rows, IMAGE_ROW_HEADER));
      return;
    }
    const digests = flagBool(args, "digests");
    ctx.io.stdout.write(
      table(
        ["REPOSITORY", "TAG", ...(digests ? ["DIGEST"] : []), "IMAGE ID", "CREATED", "SIZE"],
        rows.flatMap((r, i) => [
          [r.Repository, r.Tag, ...(digests ? [r.Digest] : []), r.ID, r.CreatedSince, r.Size],
          ...(kept[i]?.platforms ?? []).map((p) => [
            `└─ ${p.platform}`,
            "",
            ...(digests ? [""] : []),
            noTrunc ? p.id : shortId(p.id),
            timeAgo(p.created),
            humanSize(p.size),
          ]),
        ]),
      ),
    );
  },
};

/** docker history's row fields (`{{json .}}` order). */
const HISTORY_HEADER = { Comment: "COMMENT", CreatedAt: "CREATED AT", CreatedBy: "CREATED BY", CreatedSince: "CREATED", ID: "IMAGE", Size: "SIZE" };

export const historyCommand: Command = {
  name: "history",
  usage: "tsbuild history [flags] IMAGE",
  summary: `Show the history of an image, one row per step, newest first (like \`docker history\`).
Template fields: .ID .CreatedSince .CreatedAt .CreatedBy .Size .Comment.`,
  flags: [
    { name: "no-trunc", type: "boolean", help: "do not truncate CREATED BY or the image id" },
    { name: "quiet", short: "q", type: "boolean", help: "print only the image id (<missing> rows left out)" },
    { name: "format", type: "string", value: "FORMAT", help: "table (default), json (one object a line), or a Go template: '{{.CreatedBy}}'" },
    PLATFORM_FLAG,
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "history");
    if (args.positionals.length !== 1) throw new UsageError("BAD_ARGS", "`tsbuild history` takes exactly one image");
    const format = parseListFormat(flagString(args, "format"));
    const engine = openEngine({ root: await storeRootFlag(args) });
    const img = await requireImage(engine.content, engine.images, args.positionals[0] as string, platformOption(args));
    const noTrunc = flagBool(args, "no-trunc");
    const id = noTrunc ? img.manifest.config.digest : shortId(img.manifest.config.digest);
    const layers = [...img.manifest.layers];
    const steps = (img.config.history ?? []).map((h) => {
      const size = h.empty_layer ? 0 : (layers.shift()?.size ?? 0);
      return { created: h.created, createdBy: h.created_by ?? "", size, comment: h.comment ?? "" };
    });
    steps.reverse();
    const rows = steps.map((r, i) => {
      const createdBy = r.createdBy.replace(/\t/g, " ");
      return {
        Comment: r.comment,
        CreatedAt: rfc3339(r.created),
        CreatedBy: noTrunc ? createdBy : truncate(createdBy, 45),
        CreatedSince: timeAgo(r.created),
        ID: i === 0 ? id : "<missing>",
        Size: humanSize(r.size),
      };
    });
    if (flagBool(args, "quiet")) {
      ctx.io.stdout.write(id + "\n");
      return;
    }
    if (format.kind === "json") {
      for (const r of rows) ctx.io.stdout.write(goJson(r) + "\n");
      return;
    }
    if (format.kind === "template") {
      if (!format.table) format.template.execute(HISTORY_HEADER);
      ctx.io.stdout.write(renderList(format.template, format.table, rows, HISTORY_HEADER));
      return;
    }
    ctx.io.stdout.write(
      table(
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment]),
      ),
    );
  },
};

export const inspectCommand: Command = {
  name: "inspect",
  usage: "tsbuild inspect [--format TEMPLATE] IMAGE [IMAGE...]",
  summary: `Print images as JSON: tsbuild's shape (Id, RepoTags, ManifestDigest, Created, Architecture, Os, Size,
Config = the whole OCI image config, Manifest).
--format TEMPLATE runs a Go template over each image in \`docker image inspect\`'s shape (Id, RepoTags,
RepoDigests, Created, Author, Config.{User,Env,Cmd,Entrypoint,WorkingDir,Labels,ExposedPorts,Volumes,…},
Architecture, Os, Size, RootFS.Layers, Metadata.LastTagTime), one line per image: '{{.Id}}', '{{.Config.Env}}',
'{{json .Config}}', '{{index .Config.Labels "k"}}'. --format json prints that shape as a JSON array.`,
  flags: [
    PLATFORM_FLAG,
    { name: "format", short: "f", type: "string", value: "TEMPLATE", help: "a Go template over docker's inspect shape, or json" },
    { name: "type", type: "string", value: "image", help: "accepted for docker: tsbuild inspects images only" },
    { name: "size", short: "s", type: "boolean", help: "accepted for docker: Size is always shown" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "inspect");
    if (args.positionals.length === 0) throw new UsageError("BAD_ARGS", "`tsbuild inspect` needs at least one image");
    const type = flagString(args, "type");
    if (type !== undefined && type !== "image")
      throw new UsageError("BAD_FLAG_VALUE", `--type ${type}: tsbuild has only images to inspect`, { hint: "drop --type, or give --type image" });
    const format = flagString(args, "format");
    const template = format === undefined || format.trim() === "json" ? undefined : parseGoTemplate(format);
    const engine = openEngine({ root: await storeRootFlag(args) });
    const all = await engine.images.list();
    const out = [];
    const docker = [];
    for (const ref of args.positionals) {
      const img = await requireImage(engine.content, engine.images, ref, platformOption(args));
      const names = all.filter((r) => r.target.digest === img.record.target.digest).map((r) => familiarName(r.name));
      if (format !== undefined) {
        docker.push(dockerInspectObject({ config: img.config, manifest: img.manifest, names, lastTagTime: img.record.updated }));
        continue;
      }
      out.push({
        Id: img.manifest.config.digest,
        RepoTags: names,
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
    if (template) for (const d of docker) ctx.io.stdout.write(template.execute(d) + "\n");
    else if (format !== undefined) ctx.io.stdout.write(JSON.stringify(JSON.parse(goJson(docker)), null, 4) + "\n");
    else ctx.io.stdout.write(JSON.stringify(out, null, 4) + "\n");
  },
};

export const tagCommand: Command = {
  name: "tag",
  usage: "tsbuild tag SOURCE_IMAGE TARGET_IMAGE",
  summary: "Give an image another name (TARGET_IMAGE follows docker's rules: lower-case repository, a tag, no digest).",
  flags: [...GLOBAL_FLAGS],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "tag");
    if (args.positionals.length !== 2) throw new UsageError("BAD_ARGS", "`tsbuild tag` takes a source and a target image name");
    const [src, dst] = args.positionals as [string, string];
    const ref = parseReference(dst);
    if (ref.digest !== undefined)
      throw new UsageError("INVALID_REFERENCE", `tag ${dst}: refusing to create a tag with a digest reference`, {
        hint: `give a name[:tag], e.g. ${ref.familiar.replace(/@.*$/, "")}`,
      });
    const engine = openEngine({ root: await storeRootFlag(args) });
    const img = await requireImage(engine.content, engine.images, src, { anyPlatform: true });
    await engine.images.set(ref.name, img.record.target);
  },
};

export const rmiCommand: Command = {
  name: "rmi",
  usage: "tsbuild rmi [-f] IMAGE [IMAGE...]",
  summary: `Remove image names from the local store (blobs are reclaimed by \`tsbuild prune\`). A name removes that name;
an image id removes every name of the image, which for names in several repositories needs -f, as in docker.
Every IMAGE is tried; the command fails if any could not be removed.`,
  flags: [
    { name: "force", short: "f", type: "boolean", help: "remove every name of an image given by id, also across repositories" },
    { name: "no-prune", type: "boolean", help: "accepted for docker: rmi never removes blobs (prune does)" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "rmi");
    if (args.positionals.length === 0) throw new UsageError("BAD_ARGS", "`tsbuild rmi` needs at least one image");
    const force = flagBool(args, "force");
    const engine = openEngine({ root: await storeRootFlag(args) });
    const failed: unknown[] = [];
    for (const ref of args.positionals) {
      try {
        const img = await requireImage(engine.content, engine.images, ref, { anyPlatform: true });
        // By name: just that name. By id: every name of the image (several repositories only with -f).
        const byName = img.record.name === safeNormalize(ref);
        let names = [img.record.name];
        if (!byName) {
          names = (await engine.images.list()).filter((r) => r.target.digest === img.record.target.digest).map((r) => r.name);
          const repos = new Set(
            names.map((n) =>
              parseReference(n)
                .familiar.replace(/@.*$/, "")
                .replace(/:[^:/]*$/, ""),
            ),
          );
          if (repos.size > 1 && !force)
            throw new UsageError("NEEDS_FORCE", `cannot remove ${ref}: the image is named in several repositories (${names.map(familiarName).join(", ")})`, {
              hint: `remove the names one by one, or force it: tsbuild rmi -f ${ref}`,
            });
        }
        for (const n of names) {
          await engine.images.delete(n);
          ctx.io.stdout.write(`Untagged: ${familiarName(n)}\n`);
        }
      } catch (e) {
        failed.push(e);
      }
    }
    // One failure is reported as the error (with its hint); with several, each is named and the exit status is 1.
    if (failed.length === 1) throw failed[0];
    for (const e of failed) ctx.io.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}${isCoded(e) ? ` [${e.code}]` : ""}\n`);
    return failed.length > 0 ? 1 : 0;
  },
};

function isCoded(e: unknown): e is { code: string } {
  return typeof (e as { code?: unknown } | null)?.code === "string";
}

function safeNormalize(ref: string): string | undefined {
  try {
    return normalizeName(ref);
  } catch {
    return undefined;
  }
}
