/**
 * A Shell that runs every privileged command through the host helper (deploy/host/cellops-host), with the
 * run's fencing token: `sudo -n <helper> --fence <cell>:<token> <verb> <args>`.
 *
 * Used when `ssh.hostHelper` is set, i.e. when the hosts' sudoers allows the helper and nothing else.
 * Runbooks are unchanged: they build the same `sudo -n <tool> …` commands (which is what approvers read),
 * and this shell maps each to the helper verb that does the same (helper-verbs.ts). A command it cannot
 * map, or a destructive one without a fencing token, is refused here, before anything is sent.
 */
import { SafetyGateError } from '../../errors.js';
import { sh } from '../../ports/shell-command.js';
import type { ExecOptions, ExecResult, HostRef, Shell } from '../../ports/shell.js';
import type { ShellCommand } from '../../ports/shell-command.js';
import { fenceScope, helperCall, type HelperTemplates } from './helper-verbs.js';

export interface HostHelperShellOptions extends HelperTemplates {
  /** Absolute path of the helper on the hosts (ssh.hostHelper). */
  readonly helperPath: string;
}

/** Commands that need no privilege and pass through unchanged (waiting for a fresh machine's SSH). */
const UNPRIVILEGED: ReadonlySet<string> = new Set(['true']);

/** The helper command that stands for `command`; throws SafetyGateError for anything it cannot stand for. */
export function helperCommand(
  command: ShellCommand,
  options: HostHelperShellOptions,
  fence: ExecOptions['fence'],
): ShellCommand {
  if (UNPRIVILEGED.has(command)) return command;
  const found = helperCall(command, options);
  if (!found)
    throw new SafetyGateError(
      `\`${command}\` is not an operation of the host helper ${options.helperPath}; with ssh.hostHelper set, cellops runs nothing else as root`,
    );
  if (found.destructive && fence === undefined)
    throw new SafetyGateError(
      `\`${command}\` changes the host and the helper needs the run's fencing token for it; it runs only inside a run that holds the cell's lock`,
    );
  const fenceArgs = fence === undefined ? [] : ['--fence', `${fenceScope(fence.scope)}:${fence.token}`];
  return sh`sudo -n ${[options.helperPath, ...fenceArgs, found.verb, ...found.args]}`;
}

export function createHostHelperShell(inner: Shell, options: HostHelperShellOptions): Shell {
  return {
    async exec(host: HostRef, command: ShellCommand, execOptions?: ExecOptions): Promise<ExecResult> {
      return inner.exec(host, helperCommand(command, options, execOptions?.fence), execOptions);
    },
    ...(inner.knownHostKeys ? { knownHostKeys: inner.knownHostKeys.bind(inner) } : {}),
    close: () => inner.close(),
  };
}
