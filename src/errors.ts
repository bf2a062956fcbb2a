// Errors are values: a stable code, a message a user understands, an optional source range and hint.
// The CLI prints them with a code frame; stack traces only with --debug.
import type { SourceRange } from "./frontend/types.js";

export interface TsbuildErrorOptions {
  range?: SourceRange;
  hint?: string;
  cause?: unknown;
}

export class TsbuildError extends Error {
  readonly code: string;
  readonly range?: SourceRange;
  readonly hint?: string;
  /** Exit status the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(code: string, message: string, opts: TsbuildErrorOptions = {}) {
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

export function isTsbuildError(e: unknown): e is TsbuildError {
  return e instanceof TsbuildError;
}

/** Throws AbortError if the signal has fired; call between steps of long operations. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}
