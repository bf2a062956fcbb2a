// Registry credentials in Docker's config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json): reading
// `auths` entries (base64 "user:password" in `auth`, or username/password) and writing them for login/logout,
// atomically with mode 0600 (a symlinked config file stays a link, the file it names is replaced),
// keeping every other key of the file as it was. Read-modify-write runs under `config.json.lock`, so concurrent
// logins to different registries all keep their entry.
import { homedir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { withFileLock } from "../store/file-lock.js";
import { describeFsError } from "../store/fs-error.js";
import { writeOutputFile } from "../store/output-file.js";
import { MAX_DOCKER_CONFIG_BYTES, readRegularFileIfExists } from "../fs/read-input.js";

export interface Credentials {
  username: string;
  password: string;
}

/** The file login writes and pulls read: `authFile` if given, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env, authFile?: string): string {
  if (authFile) return authFile;
  if (env["DOCKER_CONFIG"]) return join(env["DOCKER_CONFIG"], "config.json");
  return join(env["HOME"] || homedir(), ".docker", "config.json");
}

/** The Docker Hub key docker login uses; every docker.io spelling maps to it. */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/** `https://host:5000/v1/` → `host:5000`; docker.io spellings → docker.io. */
export function registryKey(server: string): string {
  let s = server.trim().replace(/^[a-z]+:\/\//i, "");
  s = s.replace(/\/.*$/, "").toLowerCase();
  return DOCKER_HUB_HOSTS.has(s) ? "docker.io" : s;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}
interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  [k: string]: unknown;
}

async function readConfig(path: string): Promise<DockerConfigFile> {
  // A regular file only (a FIFO here used to hang every pull, deaf to Ctrl-C), of a sane size.
  let text: string | undefined;
  try {
    text = await readRegularFileIfExists(path, { maxBytes: MAX_DOCKER_CONFIG_BYTES, what: "Docker config file", errorClass: UsageError });
  } catch (e) {
    const err = e as UsageError;
    throw new UsageError("CREDENTIALS_UNREADABLE", err.message, { cause: e, hint: err.hint ?? "fix or remove the file, or point DOCKER_CONFIG elsewhere" });
  }
  if (text === undefined) return {};
  if (text.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    // The parser's message may quote file content (credentials): say only where it broke.
    throw new UsageError("CREDENTIALS_UNREADABLE", `the Docker config file ${path} is not valid JSON`, {
      hint: "fix or remove the file, then run `tsbuild login` again",
    });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new UsageError("CREDENTIALS_UNREADABLE", `the Docker config file ${path} is not a JSON object`);
  return v as DockerConfigFile;
}

function decodeEntry(e: AuthEntry): Credentials | undefined {
  if (typeof e.auth === "string" && e.auth !== "") {
    const plain = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = plain.indexOf(":");
    if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  if (typeof e.username === "string" && typeof e.password === "string") return { username: e.username, password: e.password };
  return undefined;
}

/** Credentials for a registry host ("docker.io", "localhost:5000"), or undefined for anonymous access. */
export async function lookupCredentials(registry: string, path: string): Promise<Credentials | undefined> {
  const cfg = await readConfig(path);
  const want = registryKey(registry);
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    if (registryKey(key) !== want || typeof entry !== "object" || entry === null) continue;
    const c = decodeEntry(entry);
    if (c) return c;
  }
  return undefined;
}

function keyFor(registry: string): string {
  return registryKey(registry) === "docker.io" ? DOCKER_HUB_KEY : registryKey(registry);
}

const WHAT = "the Docker config file";

/** `fn` under the config file's lock, with file-system errors naming the file. */
async function underLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withFileLock(path, fn, { what: `${WHAT} ${path}` });
  } catch (e) {
    throw describeFsError(e, path, WHAT);
  }
}

function writeConfig(path: string, cfg: DockerConfigFile): Promise<void> {
  return writeOutputFile(path, JSON.stringify(cfg, null, "\t") + "\n", { mode: 0o600, forceMode: true, what: WHAT });
}

/** Store credentials for `registry` (replacing any entry under another spelling of the same host). */
export function saveCredentials(registry: string, creds: Credentials, path: string): Promise<void> {
  return underLock(path, async () => {
    const cfg = await readConfig(path);
    const auths: Record<string, AuthEntry> = {};
    for (const [k, v] of Object.entries(cfg.auths ?? {})) if (registryKey(k) !== registryKey(registry)) auths[k] = v;
    auths[keyFor(registry)] = { auth: Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64") };
    cfg.auths = auths;
    await writeConfig(path, cfg);
  });
}

/** Remove the credentials for `registry`; false when there were none. */
export function removeCredentials(registry: string, path: string): Promise<boolean> {
  return underLock(path, async () => {
    const cfg = await readConfig(path);
    const before = Object.keys(cfg.auths ?? {});
    const kept = before.filter((k) => registryKey(k) !== registryKey(registry));
    if (kept.length === before.length) return false;
    const auths: Record<string, AuthEntry> = {};
    for (const k of kept) auths[k] = (cfg.auths as Record<string, AuthEntry>)[k] as AuthEntry;
    cfg.auths = auths;
    await writeConfig(path, cfg);
    return true;
  });
}
