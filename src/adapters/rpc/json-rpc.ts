import type { HttpClient } from './http-client.js';
import { redactThenTruncate } from '../../infra/redact.js';

/**
 * A minimal JSON-RPC 2.0 client over HTTP POST, and the one question the NodeRpc adapter asks of errors:
 * "does this node simply not have that method?" (so it can try the older name).
 */

export class JsonRpcError extends Error {
  constructor(
    readonly method: string,
    readonly rpcCode: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'JsonRpcError';
  }
}

/** The response was not JSON-RPC (an HTML error page, a proxy's answer, a non-2xx status without body). */
export class BadRpcResponseError extends Error {
  constructor(
    readonly method: string,
    message: string,
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = 'BadRpcResponseError';
  }
}

/**
 * True when the node says it does not serve `method`: code -32601 (geth, kcnd), or the same wording under
 * another code (ganache answers -32700 "does not exist/is not available").
 */
export function isMethodNotFound(error: unknown): boolean {
  if (!(error instanceof JsonRpcError)) return false;
  if (error.rpcCode === -32601) return true;
  return /does not exist|not available|method not found|not supported|unknown method/i.test(error.message);
}

let nextId = 1;

/**
 * fetch refuses URLs with user:password (and would echo them in its error): credentials configured in the
 * URL travel as a Basic Authorization header instead.
 */
export function httpTarget(url: string): { url: string; headers: Record<string, string> } {
  // Credentials need an @: the common URL without one is taken as it is, without parsing it every probe.
  if (!url.includes('@')) return { url, headers: {} };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, headers: {} };
  }
  if (parsed.username === '' && parsed.password === '') return { url, headers: {} };
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  return {
    url: parsed.toString(),
    headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
  };
}

export async function jsonRpcCall(
  http: HttpClient,
  url: string,
  method: string,
  params: readonly unknown[],
  limits: { readonly timeoutMs: number; readonly signal?: AbortSignal },
): Promise<unknown> {
  const id = nextId++;
  const target = httpTarget(url);
  const response = await http({
    method: 'POST',
    url: target.url,
    headers: { ...target.headers, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
    timeoutMs: limits.timeoutMs,
    ...(limits.signal ? { signal: limits.signal } : {}),
  });
  const text = response.text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRpcResponseError(
      method,
      `HTTP ${response.status} with a body that is not JSON (${redactThenTruncate(text, 81).replace(/\s+/g, ' ')})`,
      response.status,
    );
  }
  if (typeof body !== 'object' || body === null)
    throw new BadRpcResponseError(method, `HTTP ${response.status} with a JSON body that is not an object`);
  const envelope = body as { result?: unknown; error?: { code?: unknown; message?: unknown } };
  if (envelope.error !== undefined && envelope.error !== null) {
    const code = typeof envelope.error.code === 'number' ? envelope.error.code : undefined;
    const message = typeof envelope.error.message === 'string' ? envelope.error.message : 'unknown error';
    throw new JsonRpcError(method, code, message);
  }
  if (!response.ok)
    throw new BadRpcResponseError(method, `HTTP ${response.status} ${response.statusText}`, response.status);
  if (!('result' in envelope)) throw new BadRpcResponseError(method, 'a JSON-RPC response without result');
  return envelope.result;
}

/** A hex quantity ("0x1a") or a plain non-negative integer, as a number; undefined otherwise. */
export function toQuantity(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value === 'string' && /^0x[0-9a-fA-F]+$/.test(value)) {
    const n = Number.parseInt(value, 16);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return undefined;
}

export function toHexQuantity(n: number): string {
  return `0x${n.toString(16)}`;
}
