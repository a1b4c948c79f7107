/**
 * The catalogue of errors cellops raises on purpose. Each has a stable `code` (for logs, metrics and tests),
 * a `retryable` flag (may the same call succeed later?), and a message that says what failed, where, and
 * what to do next. src/views renders them for Slack in one place.
 *
 * Messages must never contain secrets: nodekeys, tokens or private keys.
 */

/**
 * Every code cellops raises, with what it means. A new code is added here first: the constructors only
 * accept codes of this catalogue, so a typo is a type error rather than a code no dashboard knows.
 */
export const ERROR_CODES = {
  // Operators and configuration
  bad_input: 'bad input from an operator (unknown node, malformed arguments); nothing ran',
  not_authorized: 'the user may not do this (not an operator or approver, or four-eyes)',
  bad_config: 'the configuration file or environment is invalid; the bot does not start',
  // Runs and the engine
  timeout: "a step's command or API call took longer than its timeout",
  safety_gate: 'a safety gate of a runbook held; the run stopped',
  check_failed: 'a readiness check found the cell not ready for a failover',
  verify_failed: "a step's post-condition did not hold after it ran",
  run_aborted: 'an operator aborted the run',
  run_handed_over: 'this process stopped driving the run; another owner or a restart resumes it',
  engine_closed: 'the engine is shutting down',
  missing_fact: 'a step needs a fact an earlier step should have recorded',
  aborted: 'a wait or command was aborted (run aborted or lock lost)',
  closed: 'the adapter was closed',
  // Locks
  lock_busy: 'another run holds the lock',
  lock_lost: 'the lock was lost while a run held it',
  lock_store_failed: 'the lock store (Redis) failed',
  // Hosts over SSH
  host_unreachable: 'a host could not be reached over SSH',
  host_key_unknown: "a host's SSH key is not in known_hosts or the run's pin",
  host_key_mismatch: 'a host presented another SSH key than the one known or pinned',
  auth_failed: 'SSH authentication failed',
  command_failed: 'a command on a host failed',
  checksum_mismatch: 'a written file does not have the expected checksum',
  // Nodes
  node_unreachable: "a node's RPC or metrics endpoint could not be reached",
  node_timeout: 'a node did not answer in time',
  node_bad_response: 'a node answered with something that cannot be read',
  node_rpc_error: 'a node answered a JSON-RPC call with an error',
  node_metrics_missing: "a node's metrics lack a gauge cellops reads",
  node_ipc_failed: "`kcn attach` on a node's IPC socket failed",
  rpc_unreachable: 'a (simulated) node is not running',
  rpc_unavailable: 'a node has no JSON-RPC endpoint configured',
  // AWS EC2
  aws_credentials_missing: 'no AWS credentials were found',
  aws_region_missing: 'no AWS region is configured',
  ec2_auth_failed: 'EC2 refused the credentials',
  ec2_unauthorized: 'the credentials may not make this EC2 call',
  ec2_bad_request: 'EC2 refused the request as invalid',
  ec2_bad_response: 'EC2 answered without what the call needs',
  ec2_incorrect_state: 'an EC2 resource is in the wrong state for the call',
  ec2_no_capacity: 'EC2 has no capacity for the instance type in that zone',
  ec2_not_found: 'an EC2 resource does not exist',
  ec2_server_error: 'EC2 failed on its side',
  ec2_throttled: 'EC2 throttled the call',
  ec2_unreachable: 'the EC2 endpoint could not be reached',
  ec2_wait_failed: 'an EC2 resource did not reach the awaited state',
  ec2_error: 'another EC2 error',
  untagged_resource: 'a resource cellops would create or touch lacks the run tag',
  no_private_ip: 'an instance has no private IP',
  // Slack
  slack_error: "Slack's Web API answered with an error",
  slack_rate_limited: "Slack's Web API rate-limited the call",
  slack_unreachable: "Slack's Web API could not be reached",
  response_url_failed: "posting to a slash command's response_url failed",
  // Pagers
  pager_rejected: 'a pager refused the event (bad request or credentials); not retried',
  pager_rate_limited: 'a pager rate-limited the event; retried after its Retry-After',
  pager_unavailable: 'a pager could not be reached or failed on its side; retried with backoff',
  pager_queue_full: "a pager's queue was full and the oldest trigger was dropped",
  // Command line
  cli_failed: 'a cellops CLI command failed (the message says which and why)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CellopsError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
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
  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** The error's message for people, whatever was thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
