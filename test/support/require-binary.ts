import { execFileSync } from 'node:child_process';

/**
 * Finds a system binary the integration tests need, or fails with the command that installs it. Never a
 * silent skip: in CI a missing binary must fail the run.
 */
export function requireBinary(name: string, installHint: string): string {
  const candidates = [name, `/usr/sbin/${name}`, `/usr/bin/${name}`, `/usr/local/bin/${name}`];
  for (const candidate of candidates) {
    try {
      execFileSync('sh', ['-c', `command -v ${candidate}`], { stdio: 'pipe' });
      return candidate;
    } catch {
      // try the next place
    }
  }
  throw new Error(`${name} is not installed; the integration tests need it: ${installHint}`);
}
