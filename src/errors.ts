// Errors are values: a stable code, a message a user understands, an optional source range and hint.
// The CLI prints them with a code frame; stack traces only with --debug.
import type { SourceRange } from "./source-range.js";

/**
 * Every error code tsbuild uses: stable strings a library caller or script may match on. TsbuildError takes only
 * these, so a typo or a new code is a compile error until it is listed here (and so documented in one place).
 */
export const ERROR_CODES = [
  "ACCESS_DENIED",
  "AMBIGUOUS_TAG",
  "ARITY",
  "AUTH_FAILED",
  "AUTH_REQUIRED",
  "AUTH_UNSUPPORTED",
  "BAD_ARG",
  "BAD_ARGS",
  "BAD_CACHE",
  "BAD_CACHE_REF",
  "BAD_CHMOD",
  "BAD_CONFIG",
  "BAD_CONTEXT",
  "BAD_DESCRIPTOR",
  "BAD_DURATION",
  "BAD_ENTRY",
  "BAD_ENTRY_PATH",
  "BAD_ENTRY_TYPE",
  "BAD_ENV",
  "BAD_FLAG_VALUE",
  "BAD_HEALTHCHECK",
  "BAD_HEREDOC",
  "BAD_INDEX",
  "BAD_JSON",
  "BAD_KEY_VALUE",
  "BAD_LAYOUT",
  "BAD_MANIFEST",
  "BAD_MOUNT",
  "BAD_MOUNT_TARGET",
  "BAD_NAME",
  "BAD_ONBUILD",
  "BAD_PATTERN",
  "BAD_SOURCE",
  "BAD_SOURCE_DATE_EPOCH",
  "BAD_SUBDIR",
  "BAD_SUBSTITUTION",
  "BAD_TEMPLATE",
  "BAD_USER",
  "BLOB_CORRUPT",
  "BLOB_MISSING",
  "BLOB_NOT_FOUND",
  "BLOB_NOT_JSON",
  "BLOB_SIZE_MISMATCH",
  "CACHE_MOUNT_TOO_LARGE",
  "CANCELLED",
  "CANNOT_READ",
  "CHECK_FAILED",
  "CIRCULAR_DEPENDENCY",
  "COMPRESS_FAILED",
  "CONNECTION_DROPPED",
  "CONNECTION_REFUSED",
  "CONTEXT_CHANGED",
  "CONTEXT_DOWNLOAD_FAILED",
  "CONTEXT_NOT_FOUND",
  "CORRUPT_ARCHIVE",
  "CORRUPT_BLOB",
  "CORRUPT_LAYER",
  "CREDENTIALS_UNREADABLE",
  "DECOMPRESS_FAILED",
  "DEST_HAS_SYMLINK",
  "DEST_IS_DIR",
  "DEST_NOT_DIR",
  "DIFF_ID_COUNT",
  "DIGEST_MISMATCH",
  "DISK_FULL",
  "DOCKERFILE_NOT_FOUND",
  "DOCKER_LOAD_FAILED",
  "DOWNLOAD_FAILED",
  "DUPLICATE_DIRECTIVE",
  "DUPLICATE_FLAG",
  "DUPLICATE_STAGE",
  "EMPTY_ARCHIVE",
  "EMPTY_BASE",
  "EMPTY_DOCKERFILE",
  "ENTITLEMENT_REQUIRED",
  "FILE_LOCKED",
  "FROM_EXPANSION",
  "FS_ERROR",
  "GIT_FAILED",
  "GIT_REF_NOT_FOUND",
  "GIT_REPO_NOT_FOUND",
  "HARDLINK_TARGET_MISSING",
  "HARDLINK_TO_DIRECTORY",
  "HOST_NOT_FOUND",
  "HOST_UNREACHABLE",
  "IMAGE_NOT_FOUND",
  "INPUT_NOT_A_FILE",
  "INPUT_NOT_FOUND",
  "INPUT_TOO_LARGE",
  "INPUT_UNREADABLE",
  "INTERNAL",
  "INVALID_DIGEST",
  "INVALID_ESCAPE",
  "INVALID_KEY",
  "INVALID_NAME",
  "INVALID_PLATFORM",
  "INVALID_PORT",
  "INVALID_REFERENCE",
  "INVALID_REGISTRY",
  "INVALID_SHELL",
  "INVALID_SIGNAL",
  "INVALID_STAGE_NAME",
  "INVALID_VOLUME",
  "IO_ERROR",
  "LAYER_NOT_TAR",
  "LAYER_TOO_LARGE",
  "LINE_TOO_LONG",
  "MISSING_BLOB",
  "MISSING_FLAG",
  "MISSING_FLAG_VALUE",
  "MOUNT_COPY_FAILED",
  "MOUNT_SOURCE_NOT_FOUND",
  "MULTI_PLATFORM_OUTPUT",
  "NEEDS_FORCE",
  "NETNS_FAILED",
  "NETWORK_ERROR",
  "NON_UTF8_PATH",
  "NOTHING_TO_EXPORT",
  "NOT_A_CACHE",
  "NOT_A_DIRECTORY",
  "NOT_A_FILE",
  "NOT_A_TAR",
  "NOT_A_TTY",
  "NO_COMMAND",
  "NO_DOCKER",
  "NO_EMULATOR",
  "NO_FROM",
  "NO_MANIFEST",
  "NO_MATCHING_PLATFORM",
  "NO_NETWORK",
  "NO_RUNTIME",
  "NO_SLIRP4NETNS",
  "NO_SUBORDINATE_IDS",
  "NO_TAR",
  "OUT_OF_MEMORY",
  "OVERLAY_UNAVAILABLE",
  "PARSE_FAILED",
  "PATH_BUSY",
  "PATH_EXISTS",
  "PATH_IS_DIRECTORY",
  "PATH_NOT_DIRECTORY",
  "PATH_NOT_FOUND",
  "PATH_NOT_WRITABLE",
  "PATH_OUTSIDE_ROOT",
  "PATH_TOO_LONG",
  "PERMISSION_DENIED",
  "PLATFORM_MISMATCH",
  "PRUNE_PLAN_INVALID",
  "PUSH_TO_DIGEST",
  "READ_ONLY_FS",
  "REF_CORRUPT",
  "RESERVED_STAGE_NAME",
  "RESPONSE_TOO_LARGE",
  "RUNTIME_FAILED",
  "RUNTIME_STATE_DIR",
  "RUN_FAILED",
  "SECCOMP_PROFILE",
  "SECCOMP_UNSUPPORTED",
  "SECRET_NOT_FOUND",
  "SERVER_ERROR",
  "SHELL_NOT_JSON",
  "SIZE_CHANGED",
  "SIZE_MISMATCH",
  "SLIRP_FAILED",
  "SNAPSHOT_COPY_FAILED",
  "SOURCE_NOT_FOUND",
  "SOURCE_OUTSIDE_CONTEXT",
  "SOURCE_UNREADABLE",
  "SSH_NOT_FOUND",
  "STAGE_ORDER",
  "STDIN_IS_TERMINAL",
  "STDOUT_IS_TERMINAL",
  "STORE_BUSY",
  "SYMLINK_LOOP",
  "SYNTAX",
  "TAR_FAILED",
  "TIMEOUT",
  "TLS_ERROR",
  "TOKEN_ERROR",
  "TOOL_MISSING",
  "TOO_MANY_DOCUMENTS",
  "TOO_MANY_FILES",
  "TRUNCATED",
  "UMOUNT_FAILED",
  "UNEXPECTED_STATUS",
  "UNKNOWN_FLAG",
  "UNKNOWN_FORMAT",
  "UNKNOWN_GROUP",
  "UNKNOWN_INSTRUCTION",
  "UNKNOWN_STAGE",
  "UNKNOWN_TARGET",
  "UNKNOWN_USER",
  "UNSAFE_PATH",
  "UNSET_VARIABLE",
  "UNSUPPORTED",
  "UNSUPPORTED_ENTRY",
  "UNSUPPORTED_LAYER",
  "UNSUPPORTED_MANIFEST",
  "UNSUPPORTED_MEDIA_TYPE",
  "UNTERMINATED_HEREDOC",
  "UPLOAD_FAILED",
  "USERNS_FAILED",
  "WRITE_ABORTED",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface TsbuildErrorOptions {
  range?: SourceRange;
  hint?: string;
  cause?: unknown;
}

export class TsbuildError extends Error {
  readonly code: ErrorCode;
  readonly range?: SourceRange;
  readonly hint?: string;
  /** Exit status the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(code: ErrorCode, message: string, opts: TsbuildErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    if (opts.range) this.range = opts.range;
    if (opts.hint) this.hint = opts.hint;
  }
}

/** The Dockerfile itself is malformed (syntax, unknown instruction, bad flag). */
export class DockerfileParseError extends TsbuildError {}
/** The Dockerfile parses but asks for something impossible (unknown stage, missing file, bad chown user). */
export class BuildError extends TsbuildError {}
/** Command-line usage: unknown flag, bad value, missing argument. */
export class UsageError extends TsbuildError {
  override readonly exitCode: number = 2;
}
/** The local store: missing image, corrupt blob, bad reference. */
export class StoreError extends TsbuildError {}
/** Importing or exporting archives: malformed tar, digest mismatch, unsafe paths. */
export class ArchiveError extends TsbuildError {}
/** Talking to an image registry: unreachable host, authentication, unknown image, bad or corrupt content. */
export class RegistryError extends TsbuildError {}
/** An external tool (runtime, mount) is missing or failed. */
export class EnvironmentError extends TsbuildError {}
/** The build was cancelled by a signal (Ctrl-C / SIGTERM). */
export class AbortError extends TsbuildError {
  override readonly exitCode: number = 130;
  constructor(message = "build cancelled") {
    super("CANCELLED", message);
  }
}

/** True for a string that is one of ERROR_CODES (for codes read back from JSON or another process). */
export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === "string" && (ERROR_CODES as readonly string[]).includes(s);
}

/**
 * `e` with a source range, keeping its class (a RegistryError stays a RegistryError, an OverlayUnavailableError
 * keeps its fields): an error that already has a range comes back as it is; otherwise a new instance of the same
 * class with the same code, message and hint, the range, and `cause: e` (so the original and its stack stay reachable).
 */
export function attachRange<T extends TsbuildError>(e: T, range: SourceRange): T {
  if (e.range) return e;
  // Copy the instance rather than call its constructor: subclasses (AbortError) have other constructor signatures.
  const copy = Object.create(Object.getPrototypeOf(e) as object) as T;
  for (const key of Reflect.ownKeys(e)) {
    if (key === "stack" || key === "cause") continue;
    Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(e, key) as PropertyDescriptor);
  }
  Object.defineProperty(copy, "range", { value: range, enumerable: true, writable: false, configurable: true });
  Object.defineProperty(copy, "cause", { value: e, enumerable: false, writable: true, configurable: true });
  Object.defineProperty(copy, "stack", { value: e.stack, enumerable: false, writable: true, configurable: true });
  return copy;
}

export function isTsbuildError(e: unknown): e is TsbuildError {
  return e instanceof TsbuildError;
}

/** Throws AbortError if the signal has fired; call between steps of long operations. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}
