// Shape checks for an image config read from outside (load, pull, the store when FROM uses it): every field tsbuild
// reads must have the type the spec gives it, so a crafted `"Env": [1]` is an error naming the field, not a crash
// deep in a build. Go's `null` for an empty list or map is accepted wherever Docker writes one.
import { isDigest } from "./types.js";

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  return `a ${typeof v}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function stringList(v: unknown, field: string, nullable: boolean): string | undefined {
  if (v === undefined || (nullable && v === null)) return undefined;
  if (!Array.isArray(v)) return `${field} is ${typeName(v)}, not a list of strings`;
  const i = v.findIndex((x) => typeof x !== "string");
  return i < 0 ? undefined : `${field}[${i}] is ${typeName(v[i])}, not a string`;
}

function stringField(v: unknown, field: string): string | undefined {
  return v === undefined || typeof v === "string" ? undefined : `${field} is ${typeName(v)}, not a string`;
}

function objectField(v: unknown, field: string, values: "string" | "object"): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) return `${field} is ${typeName(v)}, not an object`;
  for (const [k, x] of Object.entries(v)) {
    if (values === "string" ? typeof x !== "string" : !isObject(x) && x !== null)
      return `${field}[${JSON.stringify(k)}] is ${typeName(x)}, not ${values === "string" ? "a string" : "an object"}`;
  }
  return undefined;
}

/** The first problem with the config's shape ("config.Env[0] is a number, not a string"), or undefined when it is sound. */
export function imageConfigProblem(doc: unknown): string | undefined {
  if (!isObject(doc)) return `the config is ${typeName(doc)}, not an object`;
  const rootfs = doc["rootfs"];
  if (!isObject(rootfs) || !Array.isArray(rootfs["diff_ids"])) return "rootfs.diff_ids is missing or not a list";
  const bad = (rootfs["diff_ids"] as unknown[]).findIndex((d) => typeof d !== "string" || !isDigest(d));
  if (bad >= 0) return `rootfs.diff_ids[${bad}] is not a sha256 digest`;
  for (const f of ["architecture", "os", "variant", "author", "created"]) {
    const p = stringField(doc[f], f);
    if (p) return p;
  }
  const history = doc["history"];
  if (history !== undefined && history !== null) {
    if (!Array.isArray(history)) return `history is ${typeName(history)}, not a list`;
    const i = history.findIndex((h) => !isObject(h));
    if (i >= 0) return `history[${i}] is ${typeName(history[i])}, not an object`;
  }
  const c = doc["config"];
  if (c === undefined || c === null) return undefined;
  if (!isObject(c)) return `config is ${typeName(c)}, not an object`;
  const checks = [
    stringList(c["Env"], "config.Env", true),
    stringList(c["Cmd"], "config.Cmd", true),
    stringList(c["Entrypoint"], "config.Entrypoint", true),
    stringList(c["Shell"], "config.Shell", true),
    stringList(c["OnBuild"], "config.OnBuild", true),
    stringField(c["User"], "config.User"),
    stringField(c["WorkingDir"], "config.WorkingDir"),
    stringField(c["StopSignal"], "config.StopSignal"),
    objectField(c["Labels"], "config.Labels", "string"),
    objectField(c["ExposedPorts"], "config.ExposedPorts", "object"),
    objectField(c["Volumes"], "config.Volumes", "object"),
    c["ArgsEscaped"] === undefined || typeof c["ArgsEscaped"] === "boolean" ? undefined : `config.ArgsEscaped is ${typeName(c["ArgsEscaped"])}, not a boolean`,
  ];
  const first = checks.find((p) => p !== undefined);
  if (first) return first;
  const hc = c["Healthcheck"];
  if (hc !== undefined && hc !== null) {
    if (!isObject(hc)) return `config.Healthcheck is ${typeName(hc)}, not an object`;
    const p = stringList(hc["Test"], "config.Healthcheck.Test", true);
    if (p) return p;
    for (const f of ["Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"]) {
      if (hc[f] !== undefined && typeof hc[f] !== "number") return `config.Healthcheck.${f} is ${typeName(hc[f])}, not a number`;
    }
  }
  return undefined;
}
