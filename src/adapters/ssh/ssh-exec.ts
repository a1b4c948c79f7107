/**
 * Running one command on an open SSH connection: a timeout and the caller's abort signal kill it, output
 * is captured up to a bound per stream, stdin is written and closed, and a connection that drops under the
 * command is reported as such (the command's fate unknown) rather than as an exit status.
 */
import type { ClientChannel } from 'ssh2';
import { HostError, StepTimeoutError } from '../../errors.js';
import type { ShellCommand } from '../../ports/shell-command.js';
import type { ExecOptions, ExecResult } from '../../ports/shell.js';
import type { SshClient } from './ssh-connect.js';
import { where, type Endpoint } from './ssh-endpoint.js';
import { abortError } from './ssh-errors.js';

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  KILL: 9,
  PIPE: 13,
  TERM: 15,
};

export interface ExecRequest {
  readonly client: SshClient;
  readonly target: Endpoint;
  readonly command: ShellCommand;
  readonly options: ExecOptions;
  readonly timeoutMs: number;
  /** Bytes kept per output stream. */
  readonly outputLimit: number;
  /** performance.now() when the command was asked for, for durationMs. */
  readonly started: number;
  /** Forgets the connection: it failed under the command, so the next one must connect again. */
  readonly evict: (client: SshClient) => void;
  /** The error for a channel that failed. */
  readonly channelError: (error: Error) => Error;
}

class BoundedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.chunks.push(Buffer.from(kept));
    this.size += kept.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export function execOn(req: ExecRequest): Promise<ExecResult> {
  const { client, target } = req;
  return new Promise<ExecResult>((resolve, reject) => {
    client.exec(req.command, (error, channel) => {
      if (error) {
        req.evict(client);
        reject(
          new HostError(
            'host_unreachable',
            `could not start a command on ${where(target)}: ${error.message}. The SSH connection may have ` +
              `dropped or sshd refused a new session (MaxSessions); try again.`,
            error,
          ),
        );
        return;
      }
      collect(req, channel, resolve, reject);
    });
  });
}

/** Feeds stdin to the channel and settles with the command's result or failure, exactly once. */
function collect(
  req: ExecRequest,
  channel: ClientChannel,
  resolve: (result: ExecResult) => void,
  reject: (error: Error) => void,
): void {
  const { client, target, command, options, timeoutMs } = req;
  const stdout = new BoundedBuffer(req.outputLimit);
  const stderr = new BoundedBuffer(req.outputLimit);
  let exitCode: number | undefined;
  let finished = false;

  const finish = (outcome: { error: Error } | undefined): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    if (outcome) {
      reject(outcome.error);
      return;
    }
    resolve({
      exitCode: exitCode ?? 255,
      stdout: stdout.text(),
      stderr: stderr.text(),
      truncated: stdout.truncated || stderr.truncated,
      durationMs: performance.now() - req.started,
    });
  };
  const kill = (error: Error): void => {
    // Ask sshd to kill the process, then drop the channel whether or not it honours the signal.
    try {
      channel.signal('KILL');
    } catch {
      // the channel may already be closing
    }
    channel.close();
    finish({ error });
  };
  const timer = setTimeout(
    () =>
      kill(
        new StepTimeoutError(
          `the command on ${where(target)} did not finish within ${timeoutMs} ms and was killed: ${command}`,
        ),
      ),
    timeoutMs,
  );
  const onAbort = (): void => kill(abortError(options.signal, target));
  if (options.signal?.aborted) {
    onAbort();
    return;
  }
  options.signal?.addEventListener('abort', onAbort, { once: true });

  channel.on('data', (chunk: Buffer) => stdout.push(chunk));
  channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  channel.on('exit', (code: number | null, signalName?: string) => {
    if (typeof code === 'number') exitCode = code;
    else if (signalName) exitCode = 128 + (SIGNAL_NUMBERS[signalName] ?? 127);
  });
  channel.on('close', () => {
    if (finished) return;
    if (exitCode !== undefined) {
      finish(undefined);
      return;
    }
    // No exit status: the connection dropped mid-command, so whether it ran to the end is unknown.
    req.evict(client);
    finish({
      error: new HostError(
        'host_unreachable',
        `the SSH connection to ${where(target)} closed before the command reported an exit status; ` +
          `whether it completed is unknown, check the host before retrying: ${command}`,
      ),
    });
  });
  channel.on('error', (channelError: Error) => finish({ error: req.channelError(channelError) }));
  if (options.stdin === undefined) channel.end();
  else channel.end(Buffer.from(options.stdin));
}
