/**
 * Typed errors with context. Library code throws these; only cli/ turns them into exit codes.
 * `code` is stable and machine-readable; the message names the file and the field or tensor.
 */
export type ErrorCode =
  | 'E_CONFIG'    // invalid configuration or flag value
  | 'E_FORMAT'    // a file is corrupt, truncated or not what it claims to be
  | 'E_MISSING'   // a required file, tensor or field is absent
  | 'E_SHAPE'     // shapes or dtypes do not match
  | 'E_UNSUPPORTED' // a valid input qkd does not handle (architecture, dtype, ...)
  | 'E_VOCAB'     // tokenizer/vocabulary mismatch
  | 'E_INPUT'     // bad user data (empty text, non-UTF-8, ...)
  | 'E_NUMERIC'   // a non-finite loss or weight (a diverged run, a corrupt model)
  | 'E_INTERNAL';

export class QkdError extends Error {
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QkdError';
  }
}

export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new QkdError('E_INTERNAL', message);
}
