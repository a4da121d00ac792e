/**
 * The two kinds of error Sluice raises (DESIGN.md, "Errors").
 *
 * - A DefiniteError is a bad definition or bad data: it is reported and recorded, never retried.
 * - A TransientError is a passing condition (connection lost, server restarting): retried with
 *   backoff and surfaced in status.
 *
 * Every message says what went wrong and, in `hint`, what to do about it.
 */

export type ErrorCode = string;

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.hint = hint;
  }
  override toString(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

/** Bad definition or bad data: never retried. */
export class DefiniteError extends SluiceError {
  override readonly name: string = 'DefiniteError';
}

/** A passing condition: retried with backoff. */
export class TransientError extends SluiceError {
  override readonly name: string = 'TransientError';
}

/** Stored bytes fail their checksum or their structure: the data directory needs attention. */
export class CorruptionError extends DefiniteError {
  override readonly name: string = 'CorruptionError';
  readonly file: string;
  readonly position: number;
  constructor(file: string, position: number, what: string, hint?: string) {
    super(
      'log_corrupt',
      `${file} is damaged at byte ${position}: ${what}`,
      hint ??
        'acknowledged records are stored there, so Sluice refuses to guess. Restore the data directory ' +
          'from a backup, or move the damaged file aside to accept losing the records it holds.',
    );
    this.file = file;
    this.position = position;
  }
}
