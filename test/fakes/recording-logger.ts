import type { Logger } from '../../src/ports/logger.js';

export interface LoggedLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/**
 * A Logger that keeps every line in memory (children share the parent's list, with their bindings merged
 * into the fields), so tests can assert what was logged and grep it for secrets.
 */
export class RecordingLogger implements Logger {
  constructor(
    readonly lines: LoggedLine[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}

  debug(fields: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'debug', fields: { ...this.bindings, ...fields }, msg });
  }
  info(fields: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'info', fields: { ...this.bindings, ...fields }, msg });
  }
  warn(fields: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'warn', fields: { ...this.bindings, ...fields }, msg });
  }
  error(fields: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'error', fields: { ...this.bindings, ...fields }, msg });
  }
  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.lines, { ...this.bindings, ...bindings });
  }

  /** Everything logged, as one string, for "never appears in the logs" assertions. */
  text(): string {
    return this.lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields)}`).join('\n');
  }
}
