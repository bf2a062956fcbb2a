// Metadata instructions: how each one changes the image config (Docker's fields) and its history line.
// No disk. Values arrive already expanded where Docker expands them. A build applies them in place to the config
// its stage owns (copying the config per instruction made 50,000 ONBUILD lines quadratic); applyMeta is the pure form.
import type { HealthConfig, ImageConfig } from "../image/types.js";
import { BuildError } from "../errors.js";
import type { SourceRange } from "../frontend/types.js";
import { goList, goQuoteList, goSetMap } from "./history.js";
import { DEFAULT_SHELL, setEnv } from "./stage-state.js";

export type MetaChange =
  | { kind: "ENV"; pairs: { key: string; value: string }[] }
  | { kind: "LABEL"; pairs: { key: string; value: string }[] }
  | { kind: "MAINTAINER"; name: string }
  | { kind: "USER"; user: string }
  | { kind: "EXPOSE"; ports: string[] }
  | { kind: "VOLUME"; paths: string[] }
  | { kind: "CMD" | "ENTRYPOINT"; json: boolean; args: string[] }
  | { kind: "SHELL"; args: string[] }
  | { kind: "STOPSIGNAL"; signal: string }
  | { kind: "HEALTHCHECK"; health: HealthConfig; createdBy: string }
  | { kind: "ONBUILD"; expression: string }
  | { kind: "ARG"; args: { name: string; value?: string }[] };

export interface MetaResult {
  config: ImageConfig;
  /** The history line; undefined for ONBUILD, which BuildKit records in the config only. */
  createdBy: string | undefined;
  /** ENTRYPOINT resets an inherited CMD unless this stage set CMD. */
  cmdSet?: boolean;
}

/** Shell-form CMD/ENTRYPOINT/HEALTHCHECK run through the current SHELL. */
export function shellWrap(config: ImageConfig, command: string): string[] {
  return [...(config.config.Shell ?? DEFAULT_SHELL), command];
}

/** `80`, `80/udp`, `8000-8002/tcp` → normalised port keys; bad input is an error naming the value. */
export function expandPorts(specs: string[], range?: SourceRange): string[] {
  const out: string[] = [];
  for (const spec of specs) {
    const m = /^(?:(?:\d{1,3}\.){3}\d{1,3}:|\[[0-9a-fA-F:]+\]:)?(?:\d*:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
    if (!m) throw new BuildError("INVALID_PORT", `invalid port in EXPOSE: ${JSON.stringify(spec)}`, { range, hint: "use PORT[/PROTO], e.g. 80 or 53/udp" });
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    const proto = (m[3] ?? "tcp").toLowerCase();
    if (lo < 1 || hi > 65535 || hi < lo) throw new BuildError("INVALID_PORT", `invalid port range in EXPOSE: ${JSON.stringify(spec)}`, { range });
    for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  }
  return out;
}

/** Pure form of applyMetaInPlace: `prev` is left as it was. */
export function applyMeta(prev: ImageConfig, change: MetaChange, cmdSet: boolean, range?: SourceRange): MetaResult {
  const config = structuredClone(prev);
  return { config, ...applyMetaInPlace(config, change, cmdSet, range) };
}

/**
 * Changes `config` (which the caller owns, nested objects included) the way the instruction does; O(size of the
 * change), never O(size of the config). Validation happens before any change, so a thrown error leaves it as it was.
 */
export function applyMetaInPlace(config: ImageConfig, change: MetaChange, cmdSet: boolean, range?: SourceRange): Omit<MetaResult, "config"> {
  const c = config.config;
  switch (change.kind) {
    case "ENV": {
      for (const { key, value } of change.pairs) c.Env = setEnv(c.Env, key, value);
      return { createdBy: `ENV ${change.pairs.map((p) => `${p.key}=${p.value}`).join(" ")}` };
    }
    case "LABEL": {
      const labels = (c.Labels ??= {});
      for (const { key, value } of change.pairs) labels[key] = value;
      return { createdBy: `LABEL ${change.pairs.map((p) => `${p.key}=${p.value}`).join(" ")}` };
    }
    case "MAINTAINER":
      config.author = change.name;
      return { createdBy: `MAINTAINER ${change.name}` };
    case "USER":
      c.User = change.user;
      return { createdBy: `USER ${change.user}` };
    case "EXPOSE": {
      const ports = expandPorts(change.ports, range);
      const exposed = (c.ExposedPorts ??= {});
      for (const p of ports) exposed[p] = {};
      return { createdBy: `EXPOSE ${goSetMap(ports)}` };
    }
    case "VOLUME": {
      if (change.paths.length === 0 || change.paths.some((p) => p.trim() === ""))
        throw new BuildError("INVALID_VOLUME", "VOLUME specified can not be an empty string", { range });
      const volumes = (c.Volumes ??= {});
      for (const p of change.paths) volumes[p] = {};
      return { createdBy: `VOLUME ${goList(change.paths)}` };
    }
    case "CMD": {
      c.Cmd = change.json ? [...change.args] : shellWrap(config, change.args.join(" "));
      // BuildKit sets it on every CMD and ENTRYPOINT, exec form too (kept for Docker's image spec).
      c.ArgsEscaped = true;
      return { createdBy: `CMD ${goQuoteList(c.Cmd)}`, cmdSet: true };
    }
    case "ENTRYPOINT": {
      c.Entrypoint = change.json ? [...change.args] : shellWrap(config, change.args.join(" "));
      c.ArgsEscaped = true;
      // Docker: an ENTRYPOINT resets a CMD inherited from the base image.
      if (!cmdSet) c.Cmd = null;
      return { createdBy: `ENTRYPOINT ${goQuoteList(c.Entrypoint)}` };
    }
    case "SHELL":
      if (change.args.length === 0) throw new BuildError("INVALID_SHELL", "SHELL requires at least one argument", { range });
      c.Shell = [...change.args];
      return { createdBy: `SHELL ${goList(change.args)}` };
    case "STOPSIGNAL": {
      const sig = change.signal;
      if (!/^(SIG)?[A-Z0-9+-]+$/i.test(sig) && !/^\d+$/.test(sig))
        throw new BuildError("INVALID_SIGNAL", `invalid STOPSIGNAL: ${JSON.stringify(sig)}`, { range, hint: "use a signal name like SIGTERM or a number" });
      c.StopSignal = sig;
      return { createdBy: `STOPSIGNAL ${sig}` };
    }
    case "HEALTHCHECK":
      c.Healthcheck = change.health;
      return { createdBy: change.createdBy };
    case "ONBUILD":
      (c.OnBuild ??= []).push(change.expression);
      return { createdBy: undefined };
    case "ARG":
      return { createdBy: `ARG ${change.args.map((a) => (a.value === undefined ? a.name : `${a.name}=${a.value}`)).join(" ")}` };
  }
}
