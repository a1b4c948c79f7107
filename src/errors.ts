/**
 * The catalogue of errors cellops raises on purpose. Each has a stable `code` (for logs, metrics and tests),
 * a `retryable` flag (may the same call succeed later?), and a message that says what failed, where, and
 * what to do next. src/bot renders them for Slack in one place.
 *
 * Messages must never contain secrets: nodekeys, tokens or private keys.
 */
export class CellopsError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Bad input from an operator: unknown node, malformed arguments. Nothing ran. */
export class InputError extends CellopsError {
  constructor(message: string) {
    super('bad_input', message);
  }
}

/** The user may not do this (not an operator or approver, or four-eyes). Nothing changed. */
export class NotAuthorizedError extends CellopsError {
  constructor(message: string) {
    super('not_authorized', message);
  }
}

/** The configuration file or environment is invalid; the bot does not start. */
export class ConfigError extends CellopsError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('bad_config', problems.join('\n'));
    this.problems = problems;
  }
}

/** A step's command or API call took longer than its timeout. */
export class StepTimeoutError extends CellopsError {
  constructor(message: string) {
    super('timeout', message, { retryable: true });
  }
}

/** A host could not be reached or refused us; the message names the host and what to check. */
export class HostError extends CellopsError {
  constructor(
    code: 'host_unreachable' | 'host_key_unknown' | 'host_key_mismatch' | 'auth_failed',
    message: string,
    cause?: unknown,
  ) {
    super(code, message, { retryable: code === 'host_unreachable', cause });
  }
}

/** A safety gate of a runbook held: the run must stop, and the message says why. */
export class SafetyGateError extends CellopsError {
  constructor(message: string) {
    super('safety_gate', message);
  }
}

/** A readiness check (`/cell check`) found the cell not ready for a failover; the message says what to fix. */
export class ReadinessCheckError extends CellopsError {
  constructor(message: string) {
    super('check_failed', message);
  }
}

/** A call to a cloud or node API failed. */
export class ExternalError extends CellopsError {
  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** The error's message for people, whatever was thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
