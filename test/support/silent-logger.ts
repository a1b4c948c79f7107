/** A Logger that drops every line: for tests and benchmarks whose logs nobody reads. */
import type { Logger } from '../../src/ports/logger.js';

export function createSilentLogger(): Logger {
  const logger: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    child: () => logger,
  };
  return logger;
}
