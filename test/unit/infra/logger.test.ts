import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, shouldPrettyPrint } from '../../../src/infra/logger.js';
import { scrubDeep } from '../../../src/infra/redact.js';

const NODEKEY = 'a3'.repeat(32);

function capture(pretty = false): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const destination = new PassThrough();
  const chunks: string[] = [];
  destination.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return { logger: createLogger({ destination, level: 'debug', pretty }), text: () => chunks.join('') };
}

function lines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

class CodedError extends Error {
  readonly code = 'host_unreachable';
}

function failure(): Error {
  const socket = Object.assign(new Error(`connect ECONNREFUSED while sending nodekey ${NODEKEY}`), {
    code: 'ECONNREFUSED',
  });
  const ssh = new CodedError('ssh to cn1s failed', { cause: socket });
  return new Error('step restore-nodekey failed', { cause: ssh });
}

describe('createLogger', () => {
  it('logs an error under err with its stack, code and cause chain, the nodekey redacted', () => {
    const { logger, text } = capture();
    logger.error({ err: failure(), runId: 'r1' }, 'run failed');
    const [line] = lines(text());
    expect(text()).not.toContain(NODEKEY);
    const err = line?.err as Record<string, unknown>;
    expect(err.type).toBe('Error');
    expect(err.message).toBe('step restore-nodekey failed');
    expect(err.stack).toMatch(/^Error: step restore-nodekey failed\n\s+at /);
    const ssh = err.cause as Record<string, unknown>;
    expect(ssh).toMatchObject({ type: 'Error', message: 'ssh to cn1s failed', code: 'host_unreachable' });
    expect(ssh.stack).toContain('ssh to cn1s failed');
    const socket = ssh.cause as Record<string, unknown>;
    expect(socket).toMatchObject({
      message: 'connect ECONNREFUSED while sending nodekey [redacted]',
      code: 'ECONNREFUSED',
    });
    expect(socket.stack).toContain('[redacted]');
  });

  it('writes an Error passed as `error` under the one key err; a message string stays', () => {
    const { logger, text } = capture();
    logger.warn({ error: new Error('boom') }, 'a');
    logger.warn({ error: 'just text' }, 'b');
    const [first, second] = lines(text());
    expect(first?.err).toMatchObject({ type: 'Error', message: 'boom' });
    expect(first).not.toHaveProperty('error');
    expect(second?.error).toBe('just text');
  });

  it('scrubs nested objects and arrays, and the message', () => {
    const { logger, text } = capture();
    logger.info(
      { step: { output: [`key ${NODEKEY}`], host: { note: `0x${NODEKEY}` } }, token: 'xoxb-1-abc' },
      `loaded ${NODEKEY}`,
    );
    const [line] = lines(text());
    expect(text()).not.toContain(NODEKEY);
    expect(text()).not.toContain('xoxb-1-abc');
    expect(line?.msg).toBe('loaded [redacted]');
    expect(line?.step).toEqual({ output: ['key [redacted]'], host: { note: '[redacted]' } });
  });

  it('bounds nesting and cause chains, so a cycle cannot hang it', () => {
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    expect(JSON.stringify(scrubDeep(loop))).toContain('[circular]');
    let error = new Error('e0');
    for (let i = 1; i < 20; i++) error = new Error(`e${i}`, { cause: error });
    expect(JSON.stringify(scrubDeep(error, 50))).toContain('[cause chain truncated]');
  });

  it('prints human-readable lines with pretty, still redacted and with the stack', () => {
    const { logger, text } = capture(true);
    logger.error({ err: failure() }, 'run failed');
    expect(text()).toContain('run failed');
    expect(text()).toContain('ssh to cn1s failed');
    expect(text()).toMatch(/\n\s+at /);
    expect(text()).not.toContain(NODEKEY);
    expect(() => JSON.parse(text().split('\n')[0] ?? '') as unknown).toThrow();
  });
});

describe('shouldPrettyPrint', () => {
  it('is pretty at a terminal and in the sandbox, JSON otherwise, LOG_FORMAT deciding when set', () => {
    expect(shouldPrettyPrint({}, true, false)).toBe(true);
    expect(shouldPrettyPrint({}, false, true)).toBe(true);
    expect(shouldPrettyPrint({}, false, false)).toBe(false);
    expect(shouldPrettyPrint({ LOG_FORMAT: 'json' }, true, true)).toBe(false);
    expect(shouldPrettyPrint({ LOG_FORMAT: 'pretty' }, false, false)).toBe(true);
  });
});
