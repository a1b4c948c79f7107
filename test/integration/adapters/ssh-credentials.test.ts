/**
 * How the SSH adapter authenticates, against real OpenSSH servers: an encrypted key with its passphrase
 * from the environment, an ssh-agent, and the refusals (a key others can read, an encrypted key without
 * or with the wrong passphrase) that happen before anything is sent to a host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSshShell } from '../../../src/adapters/ssh/ssh-shell.js';
import type { CellopsConfig } from '../../../src/config/config.js';
import type { CellopsError } from '../../../src/errors.js';
import { sh } from '../../../src/ports/shell-command.js';
import type { Shell } from '../../../src/ports/shell.js';
import { labSshSettings } from '../../lab/lab-config.js';
import { runCommand, startLab, type Lab } from '../../lab/lab.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { until } from '../../support/until.js';

const PASSPHRASE = 'tr0ub4dor&3 correct horse';

let lab: Lab;
let encryptedKey = '';
const shells: Shell[] = [];
let agent: ChildProcess | undefined;

function shell(overrides: Partial<CellopsConfig['ssh']>, env: NodeJS.ProcessEnv = {}): Shell {
  const created = createSshShell({
    ssh: labSshSettings(lab, overrides),
    logger: new RecordingLogger(),
    env,
  });
  shells.push(created);
  return created;
}

const cn1 = () => ({ name: 'cn1', address: lab.host('cn1').address });

beforeAll(async () => {
  lab = await startLab({ hosts: ['cn1'], startNodes: false });
  encryptedKey = join(lab.root, 'client', 'id_encrypted');
  await runCommand(['ssh-keygen', '-q', '-t', 'ed25519', '-N', PASSPHRASE, '-f', encryptedKey]);
  appendFileSync(join(lab.root, 'client', 'authorized_keys'), readFileSync(`${encryptedKey}.pub`));
});

afterEach(async () => {
  await Promise.all(shells.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  agent?.kill();
  await lab?.stop();
});

async function failure(s: Shell, marker: string): Promise<CellopsError> {
  const error = (await s.exec(cn1(), sh`touch ${marker}`).catch((e: unknown) => e)) as CellopsError;
  expect(existsSync(marker)).toBe(false);
  return error;
}

describe('SSH credentials', () => {
  it('uses an encrypted key with the passphrase from the environment variable ssh.passphraseEnv names', async () => {
    const result = await shell(
      { privateKeyPath: encryptedKey, passphraseEnv: 'CELLOPS_TEST_PASSPHRASE' },
      { CELLOPS_TEST_PASSPHRASE: PASSPHRASE },
    ).exec(cn1(), sh`echo in`);
    expect(result).toMatchObject({ exitCode: 0, stdout: 'in\n' });
  });

  it('refuses an encrypted key without its passphrase, or with a wrong one, before connecting', async () => {
    const marker = join(lab.host('cn1').root, 'must-not-exist');
    const missing = await failure(shell({ privateKeyPath: encryptedKey }), marker);
    expect(missing.code).toBe('bad_config');
    expect(missing.message).toContain(`${encryptedKey} (ssh.privateKey) is encrypted`);
    expect(missing.message).toContain('SSH_KEY_PASSPHRASE (ssh.passphraseEnv)');

    const wrong = await failure(
      shell({ privateKeyPath: encryptedKey }, { SSH_KEY_PASSPHRASE: 'nope' }),
      marker,
    );
    expect(wrong.code).toBe('bad_config');
    expect(wrong.message).toContain('does not decrypt');
    expect(wrong.message).not.toContain('nope');
  });

  it('refuses a private key file readable by group or others, naming it and chmod 600', async () => {
    const loose = join(lab.root, 'client', 'id_loose');
    copyFileSync(lab.privateKeyPath, loose);
    for (const mode of [0o640, 0o604, 0o644]) {
      chmodSync(loose, mode);
      const error = await failure(shell({ privateKeyPath: loose }), join(lab.host('cn1').root, 'loose'));
      expect(error.code).toBe('bad_config');
      expect(error.message).toContain(
        `${loose} (ssh.privateKey) is readable by group or others (mode ${mode.toString(8)})`,
      );
      expect(error.message).toContain(`chmod 600 ${loose}`);
    }
    chmodSync(loose, 0o600);
    await expect(shell({ privateKeyPath: loose }).exec(cn1(), sh`true`)).resolves.toMatchObject({
      exitCode: 0,
    });
  });

  it('authenticates with the keys of an ssh-agent when ssh.agent is true', async () => {
    const socket = join(lab.root, 'client', 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    await until('the ssh-agent socket', () => existsSync(socket));
    const added = await runCommand(['ssh-add', '-q', lab.privateKeyPath], {
      env: { ...process.env, SSH_AUTH_SOCK: socket },
    });
    expect(added.code).toBe(0);
    const viaAgent = createSshShell({
      ssh: labSshSettings(lab, { agent: true }, { withKey: false }),
      logger: new RecordingLogger(),
      env: { SSH_AUTH_SOCK: socket },
    });
    shells.push(viaAgent);
    await expect(viaAgent.exec(cn1(), sh`echo agent`)).resolves.toMatchObject({ stdout: 'agent\n' });

    const noSocket = await failure(shell({ agent: true }), join(lab.host('cn1').root, 'agentless'));
    expect(noSocket.message).toContain('SSH_AUTH_SOCK is not set');
  });
});
