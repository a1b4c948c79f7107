/**
 * How a failed NodeRpc call reaches the operator: an ExternalError that names the node and the URL
 * (credentials stripped) and says what to check. A caller's abort rejects with the caller's reason,
 * untouched.
 */
import { CellopsError, ExternalError } from '../../errors.js';
import type { NodeEndpoint } from '../../ports/node-rpc.js';
import type { Deadline } from './deadline.js';
import { HttpBodyTooLargeError, HttpTimeoutError } from './http-client.js';
import { BadRpcResponseError, isMethodNotFound, JsonRpcError } from './json-rpc.js';
import { redactThenTruncate } from '../../infra/redact.js';

/** The URL without user:password, for messages and logs. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** Translates any failure of `what` against `url` into an operator-facing error. */
export function nodeFailure(
  node: NodeEndpoint,
  url: string,
  what: string,
  dl: Deadline,
  error: unknown,
): never {
  if (dl.caller?.aborted) throw dl.caller.reason;
  if (error instanceof CellopsError) throw error;
  const where = `${node.name} at ${displayUrl(url)}`;
  if (error instanceof HttpTimeoutError || dl.expired())
    throw new ExternalError(
      'node_timeout',
      `${what} from ${where} got no answer within ${dl.timeoutMs} ms: the node may be overloaded or ` +
        `unreachable from the bot.`,
      { retryable: true, cause: error },
    );
  if (error instanceof HttpBodyTooLargeError)
    throw new ExternalError(
      'node_bad_response',
      `${what} from ${where} failed: the answer is larger than ${error.maxBytes} bytes, so it was not read; ` +
        `check that the URL points at the node's own endpoint.`,
      { retryable: true, cause: error },
    );
  if (error instanceof JsonRpcError)
    throw new ExternalError(
      'node_rpc_error',
      `${where} answered ${error.method} with an error (${error.rpcCode ?? 'no code'}: ${redactThenTruncate(error.message, 200)})` +
        (isMethodNotFound(error)
          ? `: add the module to RPC_API in the node's conf, or remove rpc from its configuration.`
          : '.'),
      { retryable: true, cause: error },
    );
  if (error instanceof BadRpcResponseError)
    throw new ExternalError(
      'node_bad_response',
      `${what} from ${where} failed: ${error.message}; check that the URL points at the node itself.`,
      { retryable: true, cause: error },
    );
  throw new ExternalError(
    'node_unreachable',
    `${what} from ${where} failed (${networkCause(error)}): check that the node runs and that its port is ` +
      `reachable from the bot (firewall, security group).`,
    { retryable: true, cause: error },
  );
}

/** The low-level reason (ECONNREFUSED, ENOTFOUND…), with any credentials in an echoed URL removed. */
function networkCause(error: unknown): string {
  // node:http puts the code on the error itself; fetch wraps it in `cause`.
  const own = (error as { code?: unknown } | undefined)?.code;
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const text =
    typeof own === 'string'
      ? own
      : typeof cause?.code === 'string'
        ? cause.code
        : typeof cause?.message === 'string'
          ? cause.message
          : error instanceof Error
            ? error.message
            : String(error);
  return text.replace(/\/\/[^@/\s]*@/g, '//');
}
