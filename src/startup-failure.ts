/**
 * A start-up failure whose message is complete on one line: what went wrong and the way out. The
 * CLI prints such a message alone (no stack: the cause is outside the program, in the machine or
 * the settings). `code` lets a caller that knows more (the setting behind a port) reword it.
 */
export class StartupFailure extends Error {
  constructor(
    message: string,
    readonly code: StartupFailureCode = 'OTHER',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StartupFailure';
  }
}

export type StartupFailureCode =
  | 'PORT_IN_USE'
  | 'DATA_DIR_IN_USE'
  | 'NOT_WRITABLE'
  | 'UNREACHABLE_FOR_SERVER_USER'
  | 'UNTRUSTED_COPY'
  | 'PASSWORD_REFUSED'
  | 'UNSUPPORTED_POSTGRES'
  | 'MISSING_GRANTS'
  | 'OTHER';
