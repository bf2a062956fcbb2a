// `--build-context NAME=VALUE` (buildx): what VALUE names — a local directory, `docker-image://REF`,
// `oci-layout://PATH[:TAG][@DIGEST]`, or a git/http(s) URL fetched like a remote build context — turned into what the
// build reads: a directory or an image.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { formatOciLayoutRef, isOciLayoutRef, parseOciLayoutRef } from "../image/oci-layout-ref.js";
import { parseReference } from "../image/reference.js";
import { parseContextSpec, type ContextSpec } from "./context-spec.js";
import { materializeContext, type MaterializeOptions } from "./materialize-context.js";

/** A named context once fetched: a directory, or an image standing for the name (a reference, or `oci-layout://ABSPATH:TAG[@DIGEST]`). */
export type NamedContext =
  /** `remote`: fetched from a git or http URL, which no .dockerignore filters (BuildKit reads it for local ones only). */
  { kind: "dir"; path: string; remote?: true } | { kind: "image"; ref: string };

type Parsed = { name: string } & ({ kind: "image"; ref: string } | { kind: "dir"; path: string } | { kind: "remote"; spec: RemoteContextSpec });
type RemoteContextSpec = Exclude<ContextSpec, { kind: "dir" } | { kind: "stdin" }>;

export function parseNamedContext(flag: string, cwd: string): Parsed {
  const eq = flag.indexOf("=");
  const name = eq > 0 ? flag.slice(0, eq).trim() : "";
  const value = eq > 0 ? flag.slice(eq + 1).trim() : "";
  if (!name || !value)
    throw new UsageError("BAD_FLAG_VALUE", `--build-context ${JSON.stringify(flag)}: expected NAME=VALUE`, {
      hint: "e.g. --build-context deps=./vendor or --build-context alpine=docker-image://alpine:3.20",
    });
  if (/^docker-image:\/\//i.test(value)) {
    const ref = value.replace(/^docker-image:\/\//i, "");
    try {
      parseReference(ref);
    } catch (e) {
      throw new UsageError("BAD_FLAG_VALUE", `--build-context ${name}: ${JSON.stringify(ref)} is not an image reference`, { cause: e });
    }
    return { name, kind: "image", ref };
  }
  if (isOciLayoutRef(value)) {
    // Read as an image when a step needs it (solver/base-image.ts); the plan carries it as the image's name.
    const layout = parseOciLayoutRef(value);
    if (layout.path === "") throw new UsageError("BAD_FLAG_VALUE", `--build-context ${name}=${value}: expected oci-layout://PATH[:TAG][@DIGEST]`);
    return { name, kind: "image", ref: formatOciLayoutRef({ ...layout, path: resolve(cwd, layout.path) }) };
  }
  // Everything else is what a build context may be (context-spec.ts decides, for both): a directory or a git/http URL.
  const spec = parseContextSpec(value);
  if (spec.kind === "stdin") throw new UsageError("BAD_FLAG_VALUE", `--build-context ${name}=-: standard input cannot be a named context`);
  return spec.kind === "dir" ? { name, kind: "dir", path: resolve(cwd, value) } : { name, kind: "remote", spec };
}

/** Parses and fetches every --build-context; `release` removes what was fetched (call it in a finally). */
export async function materializeNamedContexts(
  flags: readonly string[],
  cwd: string,
  opts: Omit<MaterializeOptions, "dockerfileFlag" | "stdin">,
): Promise<{ contexts: Map<string, NamedContext>; release(): Promise<void> }> {
  const contexts = new Map<string, NamedContext>();
  const releases: (() => Promise<void>)[] = [];
  const release = async () => {
    for (const r of releases.reverse()) await r().catch(() => undefined);
  };
  try {
    for (const flag of flags) {
      const p = parseNamedContext(flag, cwd);
      if (contexts.has(p.name.toLowerCase())) throw new UsageError("BAD_FLAG_VALUE", `--build-context ${p.name} is given twice`);
      const value = flag.slice(flag.indexOf("=") + 1).trim();
      // A directory (or an OCI layout's) that is not there fails before the build, as buildx does.
      const requireDir = async (path: string, what: string) => {
        const st = await stat(path).catch(() => undefined);
        if (!st?.isDirectory())
          throw new UsageError("BAD_FLAG_VALUE", `--build-context ${p.name}=${value}: ${path} is not a directory`, {
            hint: `${what}; a named context is a directory, docker-image://REF, oci-layout://DIR[:TAG][@DIGEST], a git URL or an http(s) URL of a tar`,
          });
      };
      if (p.kind === "image") {
        if (isOciLayoutRef(p.ref))
          await requireDir(parseOciLayoutRef(p.ref).path, "oci-layout:// names an OCI image layout directory (unpack a layout tar first)");
        contexts.set(p.name.toLowerCase(), { kind: "image", ref: p.ref });
      } else if (p.kind === "dir") {
        await requireDir(p.path, "check the path");
        contexts.set(p.name.toLowerCase(), { kind: "dir", path: p.path });
      } else {
        // Fetched like a remote build context; its Dockerfile, if any, is not used.
        const fetched = await materializeContext(p.spec, opts);
        releases.push(() => fetched.release());
        contexts.set(p.name.toLowerCase(), { kind: "dir", path: fetched.contextDir, remote: true });
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { contexts, release };
}
