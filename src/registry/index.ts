// The registry client's public surface: pull and push whole images, login/logout, and the repository-level API
// (blobs and manifests of any media type) that the registry cache builds on.
export { pullImage, type PullOptions, type PulledImage, type RegistryCommandOptions } from "./pull.js";
export { pushImage, type PushOptions, type PushedImage } from "./push.js";
export { login, logout, registryOf, type LoginOptions } from "./login.js";
export { openRegistry, MANIFEST_ACCEPT, type FetchedManifest, type RegistryOptions, type RegistrySession, type Repository } from "./client.js";
export { storeBlobSource, type BlobSource } from "./blob-source.js";
export { dockerConfigPath, lookupCredentials, type Credentials } from "./credentials.js";
export { insecureRegistries, isInsecure } from "./endpoint.js";
export { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, pickManifest, platformMatches } from "../image/platform.js";
export { parseManifestDocument, type ImageFormat } from "./media-types.js";
