// `tsbuild platforms`: what this machine can build RUN steps for — its own platform and the ones a registered
// binfmt_misc emulator (qemu-user-static) runs. A thin view of executor/binfmt.ts's buildablePlatforms().
import { UsageError } from "../../errors.js";
import { flagString, parseArgs } from "../args.js";
import { GLOBAL_FLAGS, type Command } from "../context.js";
import { buildablePlatforms } from "../../executor/binfmt.js";
import { formatPlatform } from "../../image/platform.js";

export const platformsCommand: Command = {
  name: "platforms",
  usage: "tsbuild platforms [--format json]",
  summary: "List the platforms this machine can build for: its own, and those with a binfmt_misc emulator.",
  flags: [{ name: "format", type: "string", value: "json", help: "json: one JSON document" }, ...GLOBAL_FLAGS],
  async run(ctx) {
    const args = parseArgs(ctx.argv, this.flags, "platforms");
    if (args.positionals.length > 0) throw new UsageError("BAD_ARGS", "`tsbuild platforms` takes no arguments");
    const fmt = flagString(args, "format");
    if (fmt !== undefined && fmt !== "json") throw new UsageError("BAD_FLAG_VALUE", `--format takes json, not ${JSON.stringify(fmt)}`);
    const b = await buildablePlatforms();
    if (fmt === "json") {
      ctx.io.stdout.write(
        JSON.stringify({
          host: formatPlatform(b.host),
          native: b.native.map(formatPlatform),
          emulated: b.emulated.map((e) => ({ platform: formatPlatform(e.platform), handler: e.handler.name, interpreter: e.handler.interpreter })),
          unusable: b.unusable.map((u) => ({ handler: u.handler.name, why: u.why })),
        }) + "\n",
      );
      return;
    }
    ctx.io.stdout.write(`host:     ${formatPlatform(b.host)}\n`);
    ctx.io.stdout.write(`native:   ${b.native.map(formatPlatform).join(", ")}\n`);
    ctx.io.stdout.write(
      `emulated: ${b.emulated.length ? b.emulated.map((e) => `${formatPlatform(e.platform)} (${e.handler.interpreter})`).join(", ") : "none (apt-get install -y qemu-user-static, and register it in /proc/sys/fs/binfmt_misc)"}\n`,
    );
    for (const u of b.unusable) ctx.io.stdout.write(`unusable: ${u.handler.name}: ${u.why}\n`);
  },
};
