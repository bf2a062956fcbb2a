// save / load: docker-archive export and import of docker-archive or OCI layout tars.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { UsageError } from "../../errors.js";
import { flagBool, flagString, parseArgs } from "../args.js";
import { storeRootFlag } from "../inputs.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { openEngine } from "../../engine.js";
import { formatPlatform, parsePlatform } from "../../image/platform.js";
import { familiarName } from "../../image/reference.js";
import { requireImage } from "../../solver/image-writer.js";
import { exportDockerArchive } from "../../exporter/docker-archive.js";
import { loadArchive } from "../../exporter/load.js";
import { acquireBuildLock } from "../../store/locks.js";
import { checkOutputFile } from "../../store/output-file.js";
import { describeFsError } from "../../store/fs-error.js";

export const saveCommand: Command = {
  name: "save",
  usage: "tsbuild save [-o FILE] IMAGE [IMAGE...]",
  summary: "Write images to a docker-archive tar (`docker load -i FILE` reads it); without -o (or with -o -) to standard output.",
  flags: [
    { name: "output", short: "o", type: "string", value: "FILE", help: "the tar file to write (default, or -: standard output)" },
    { name: "platform", type: "string", value: "OS/ARCH[/VARIANT]", help: "which platform of a multi-platform image (default: this machine's)" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "save");
    const platform = flagString(args, "platform");
    const out = flagString(args, "output");
    if (out === "")
      throw new UsageError("BAD_FLAG_VALUE", "save -o needs a file name, not an empty string", { hint: "e.g. tsbuild save -o hello.tar hello:1.0" });
    if (args.positionals.length === 0) throw new UsageError("BAD_ARGS", "`tsbuild save` needs at least one image");
    const toStdout = out === undefined || out === "-";
    // As docker: binary on a terminal is refused, never printed.
    if (toStdout && ctx.io.stdoutIsTTY)
      throw new UsageError("STDOUT_IS_TERMINAL", "refusing to write the image archive to a terminal", {
        hint: "use -o FILE, or redirect standard output: tsbuild save IMAGE > image.tar",
      });
    const file = toStdout ? undefined : resolve(ctx.io.cwd, out);
    if (file !== undefined) await checkOutputFile(file, { what: "save -o" });
    const engine = openEngine({ root: await storeRootFlag(args) });
    // Held while blobs are read: a prune (after an rmi, say) cannot remove them under the export.
    const lock = await acquireBuildLock(engine.root, ctx.signal);
    try {
      const images = [];
      for (const ref of args.positionals) {
        // A docker-archive holds one platform per image: a multi-platform name gives the --platform (or host) one.
        const img = await requireImage(engine.content, engine.images, ref, platform ? { platform: parsePlatform(platform) } : {});
        images.push({ names: [familiarName(img.record.name)], manifest: img.descriptor });
      }
      await exportDockerArchive(engine.content, images, file ?? "standard output", {
        signal: ctx.signal,
        what: file ? "save -o" : "save",
        ...(file ? {} : { stream: ctx.io.stdout }),
      });
    } finally {
      await lock.release();
    }
  },
};

export const loadCommand: Command = {
  name: "load",
  usage: "tsbuild load [-i FILE]",
  summary: "Import a docker-archive or OCI layout tar into the local store (from standard input without -i, or with -i -).",
  flags: [
    { name: "input", short: "i", type: "string", value: "FILE", help: "the tar file to read (default, or -: standard input)" },
    { name: "tag", short: "t", type: "string", value: "NAME", help: "name the image (for archives without names)" },
    { name: "platform", type: "string", value: "OS/ARCH[/VARIANT]", help: "load only this platform of a multi-platform archive (default: every platform)" },
    { name: "quiet", short: "q", type: "boolean", help: "print nothing" },
    ...GLOBAL_FLAGS,
  ],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "load");
    const input = flagString(args, "input") ?? args.positionals[0];
    if (input === "") throw new UsageError("BAD_FLAG_VALUE", "load -i needs a file name, not an empty string", { hint: "e.g. tsbuild load -i busybox.tar" });
    const fromStdin = input === undefined || input === "-";
    if (fromStdin && ctx.io.stdinIsTTY)
      throw new UsageError("STDIN_IS_TERMINAL", "requested load from stdin, but stdin is a terminal", {
        hint: "pipe an archive into it (tsbuild load < image.tar), or use -i FILE",
      });
    const file = fromStdin ? undefined : resolve(ctx.io.cwd, input);
    if (file !== undefined) {
      // A missing or unreadable input is named with the flag, not as a raw errno from deep inside the loader.
      const st = await stat(file).catch((e: unknown) => Promise.reject(describeFsError(e, file, "load -i")));
      if (st.isDirectory()) throw new UsageError("PATH_IS_DIRECTORY", `load -i ${file}: is a directory; give a docker-archive or OCI layout tar`);
    }
    const engine = openEngine({ root: await storeRootFlag(args) });
    const tag = flagString(args, "tag");
    const platform = flagString(args, "platform");
    // loadArchive holds the shared store lock itself (a prune cannot take blobs before their names land).
    const loaded = await loadArchive(engine.content, engine.images, file ?? { stream: ctx.io.stdin, name: "standard input" }, {
      ...(tag ? { tag } : {}),
      ...(platform ? { platform: parsePlatform(platform) } : {}),
      signal: ctx.signal,
    });
    if (flagBool(args, "quiet")) return;
    for (const l of loaded) {
      const platforms = l.platforms ? ` (${l.platforms.map(formatPlatform).join(", ")})` : "";
      ctx.io.stdout.write(l.name ? `Loaded image: ${familiarName(l.name)}${platforms}\n` : `Loaded image ID: ${l.config}${platforms}\n`);
    }
  },
};
