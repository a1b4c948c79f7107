/**
 * The Shell port over the simulated hosts: SSH reaches a host only while it is reachable and powered,
 * injected faults answer first, `true` is the liveness probe, the snapshot failover's `cellops-*` scripts
 * are acted out by sim-disks.ts and everything else goes to the interpreter in sim-shell-commands.ts.
 * Every command is recorded, without its standard input (it may be a key).
 */
import type { ExecOptions, ExecResult, HostRef, Shell } from '../ports/shell.js';
import type { ShellCommand } from '../ports/shell-command.js';
import { HostError } from '../errors.js';
import { parsePrivilegedScript } from '../ports/shell-command.js';
import { actOutDiskOperation } from './sim-disks.js';
import type { SimHostRec } from './sim-host.js';
import { interpretShellCommand, type SimOutcome } from './sim-shell-commands.js';

export interface SimCommand {
  readonly host: string;
  readonly command: string;
  /** Bytes of standard input; the content is never kept (it may be a key). */
  readonly stdinBytes: number;
  readonly exitCode: number;
}

export interface SimShellDeps {
  /** The host SSH reaches for a reference (by address, else by name). */
  hostOf(ref: HostRef): SimHostRec;
  /** The files of a volume attached to the instance and in use (see SimMachines.attachedVolume). */
  attachedVolume(instanceId: string, volumeId: string): Readonly<Record<string, string>> | undefined;
  /** Where each command run is recorded. */
  readonly commands: SimCommand[];
}

export function createSimShell(deps: SimShellDeps): Shell {
  return {
    async exec(ref: HostRef, command: ShellCommand, execOptions?: ExecOptions): Promise<ExecResult> {
      if (execOptions?.signal?.aborted) throw execOptions.signal.reason;
      const host = deps.hostOf(ref);
      if (!host.reachable || !host.powered)
        throw new HostError(
          'host_unreachable',
          `cannot reach ${host.name} (${host.address}) over SSH: connection timed out (simulated)`,
        );
      const stdin =
        execOptions?.stdin === undefined
          ? undefined
          : typeof execOptions.stdin === 'string'
            ? execOptions.stdin
            : new TextDecoder().decode(execOptions.stdin);
      const outcome = runOn(host, command, stdin, deps);
      deps.commands.push({
        host: host.name,
        command,
        stdinBytes: stdin?.length ?? 0,
        exitCode: outcome.exitCode,
      });
      return {
        exitCode: outcome.exitCode,
        stdout: outcome.stdout ?? '',
        stderr: outcome.stderr ?? '',
        truncated: false,
        durationMs: 0,
      };
    },
    async close() {},
  };
}

function runOn(host: SimHostRec, command: string, stdin: string | undefined, deps: SimShellDeps): SimOutcome {
  const faultIndex = host.faults.findIndex((f) => f.match.test(command));
  const fault = host.faults[faultIndex];
  if (fault) {
    if (fault.once ?? true) host.faults.splice(faultIndex, 1);
    return { exitCode: fault.exitCode, stderr: fault.stderr ?? 'simulated failure' };
  }
  // What a runbook runs to see that a fresh machine answers SSH.
  if (command === 'true') return { exitCode: 0 };
  const script = parsePrivilegedScript(command);
  if (!script) return interpretShellCommand(host, command, stdin);
  return actOutDiskOperation(
    {
      files: host.disk,
      mounts: host.mounts,
      attachedVolume: (volumeId) =>
        host.instanceId === undefined ? undefined : deps.attachedVolume(host.instanceId, volumeId),
    },
    script.name,
    script.args,
  );
}
