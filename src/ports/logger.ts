/**
 * The subset of pino's API that cellops uses. Structured fields go first, the message second, as in pino.
 * Adapters must never pass secrets (nodekeys, tokens, private keys) in either.
 */
export interface Logger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
  child(bindings: Record<string, unknown>): Logger;
}
