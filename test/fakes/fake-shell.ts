import type { ExecOptions, ExecResult, HostRef, Shell } from '../../src/ports/shell.js';
import type { ShellCommand } from '../../src/ports/shell-command.js';

/** One command the code under test ran, as the shell received it. */
export interface RecordedExec {
  readonly host: HostRef;
  readonly command: ShellCommand;
  /** Standard input as text (secrets travel here: tests can assert they never reach `command`). */
  readonly stdin?: string;
  readonly timeoutMs?: number;
}

/** What a scripted command does: a result (partial, defaults filled in), a thrown error, or a function. */
export type ScriptedReply =
  Partial<ExecResult> | Error | ((exec: RecordedExec) => Partial<ExecResult> | Promise<Partial<ExecResult>>);

interface Rule {
  readonly host?: string;
  readonly match: string | RegExp;
  readonly replies: ScriptedReply[];
  /** The last reply repeats once the list is used up, unless `once`. */
  readonly once: boolean;
}

/**
 * A Shell that records every command and answers from a script. Rules are matched newest first by host
 * name (optional) and by substring or regular expression on the command; a command no rule matches
 * rejects, so a test notices an unexpected command instead of getting a silent success.
 *
 *   shell.on(/attach --exec/, { stdout: '"0xabc…"\n' });
 *   shell.on('systemctl stop', new HostError('host_unreachable', 'cn1 down'), { host: 'cn1' });
 */
export class FakeShell implements Shell {
  readonly executed: RecordedExec[] = [];
  private rules: Rule[] = [];
  closed = false;

  on(
    match: string | RegExp,
    reply: ScriptedReply | ScriptedReply[],
    options: { host?: string; once?: boolean } = {},
  ): this {
    const replies = Array.isArray(reply) ? [...reply] : [reply];
    this.rules.unshift({
      match,
      replies,
      once: options.once ?? false,
      ...(options.host ? { host: options.host } : {}),
    });
    return this;
  }

  /** Commands run so far, as strings, optionally only on one host. */
  commands(host?: string): string[] {
    return this.executed.filter((e) => host === undefined || e.host.name === host).map((e) => e.command);
  }

  async exec(host: HostRef, command: ShellCommand, options: ExecOptions = {}): Promise<ExecResult> {
    options.signal?.throwIfAborted();
    const stdin =
      options.stdin === undefined
        ? undefined
        : typeof options.stdin === 'string'
          ? options.stdin
          : Buffer.from(options.stdin).toString('utf8');
    const exec: RecordedExec = {
      host,
      command,
      ...(stdin !== undefined ? { stdin } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    };
    this.executed.push(exec);
    const rule = this.rules.find(
      (r) =>
        (r.host === undefined || r.host === host.name) &&
        (typeof r.match === 'string' ? command.includes(r.match) : r.match.test(command)) &&
        r.replies.length > 0,
    );
    if (!rule) throw new Error(`FakeShell: no scripted reply for \`${command}\` on ${host.name}`);
    const reply = rule.replies.length > 1 || rule.once ? rule.replies.shift() : rule.replies[0];
    if (reply === undefined) throw new Error(`FakeShell: replies used up for \`${command}\``);
    if (reply instanceof Error) throw reply;
    const partial = typeof reply === 'function' ? await reply(exec) : reply;
    return { exitCode: 0, stdout: '', stderr: '', truncated: false, durationMs: 1, ...partial };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
