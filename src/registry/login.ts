// `login` and `logout` as library calls: check credentials against the registry (GET /v2/ through its Basic or
// token flow) before saving them to the Docker config file; remove them again.
import { parseReference } from "../image/reference.js";
import { openRegistry, type RegistryOptions } from "./client.js";
import { dockerConfigPath, registryKey, removeCredentials, saveCredentials, type Credentials } from "./credentials.js";

export interface LoginOptions extends Pick<RegistryOptions, "insecureRegistries" | "authFile" | "env"> {
  signal?: AbortSignal;
}

/** `docker.io`, `host:5000`, `https://host:5000/v2/` or an image name's registry → the registry as keyed. */
export function registryOf(server: string): string {
  const key = registryKey(server);
  // A bare word like "busybox" is no host: treat it like docker does (an image name → its registry).
  if (!key.includes(".") && !key.includes(":") && key !== "localhost") return key === "docker.io" ? key : parseReference(server).registry;
  return key;
}

/** Verify `creds` against `server` and store them; returns the config file written. */
export async function login(server: string, creds: Credentials, opts: LoginOptions = {}): Promise<{ registry: string; file: string }> {
  const registry = registryOf(server);
  const session = openRegistry(registry, { ...opts, credentials: creds });
  try {
    await session.ping(opts.signal);
  } finally {
    session.close();
  }
  const file = dockerConfigPath(opts.env ?? process.env, opts.authFile);
  await saveCredentials(registry, creds, file);
  return { registry, file };
}

/** Forget the credentials for `server`; false when none were stored. */
export async function logout(server: string, opts: Pick<LoginOptions, "authFile" | "env"> = {}): Promise<{ registry: string; removed: boolean }> {
  const registry = registryOf(server);
  const removed = await removeCredentials(registry, dockerConfigPath(opts.env ?? process.env, opts.authFile));
  return { registry, removed };
}
