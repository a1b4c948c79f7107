/**
 * The shell the bot uses on the cell's hosts: ssh2, and when `ssh.hostHelper` is set, every privileged
 * command through the host helper with the run's fencing token (src/adapters/host-helper).
 */
import type { CellopsConfig } from '../../config/config.js';
import type { Shell } from '../../ports/shell.js';
import { createHostHelperShell } from '../host-helper/host-helper-shell.js';
import { createSshShell, type SshShellDeps } from './ssh-shell.js';

export function createCellShell(deps: SshShellDeps): Shell {
  return withHostHelper(createSshShell(deps), deps.ssh);
}

/** `shell` as is without `ssh.hostHelper`; with it, every command through the helper's verbs. */
export function withHostHelper(shell: Shell, ssh: CellopsConfig['ssh']): Shell {
  const { hostHelper, serviceCommand, attachCommand } = ssh;
  if (hostHelper === undefined) return shell;
  return createHostHelperShell(shell, { helperPath: hostHelper, serviceCommand, attachCommand });
}
