/**
 * The shell the bot uses on the cell's hosts: ssh2, and when `ssh.hostHelper` is set, every privileged
 * command through the host helper with the run's fencing token (src/adapters/host-helper).
 */
import type { Shell } from '../../ports/shell.js';
import { createHostHelperShell } from '../host-helper/host-helper-shell.js';
import { createSshShell, type SshShellDeps } from './ssh-shell.js';

export function createCellShell(deps: SshShellDeps): Shell {
  const ssh = createSshShell(deps);
  const { hostHelper, serviceCommand, attachCommand } = deps.ssh;
  if (hostHelper === undefined) return ssh;
  return createHostHelperShell(ssh, { helperPath: hostHelper, serviceCommand, attachCommand });
}
