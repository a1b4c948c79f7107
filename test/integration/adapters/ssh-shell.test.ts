import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSshShell } from '../../../src/adapters/ssh/ssh-shell.js';
import type { CellopsConfig } from '../../../src/config/config.js';
import { HostError, StepTimeoutError } from '../../../src/errors.js';
import type { Logger } from '../../../src/ports/logger.js';
import { sh } from '../../../src/ports/shell-command.js';
import type { HostRef, Shell } from '../../../src/ports/shell.js';
import { labSshSettings } from '../../lab/lab-config.js';
import { startLab, type Lab } from '../../lab/lab.js';

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function captureLogger(lines: LogLine[], bindings: Record<string, unknown> = {}): Logger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void => {
      lines.push({ level, fields: { ...bindings, ...fields }, msg });
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => captureLogger(lines, { ...bindings, ...more }),
  };
}

let lab: Lab;
const shells: Shell[] = [];
let logs: LogLine[] = [];

function shell(overrides: Partial<CellopsConfig['ssh']> = {}, outputLimitBytes?: number): Shell {
  const created = createSshShell({
    ssh: labSshSettings(lab, overrides),
    logger: captureLogger(logs),
    ...(outputLimitBytes === undefined ? {} : { outputLimitBytes }),
  });
  shells.push(created);
  return created;
}

function ref(name: string): HostRef {
  return { name, address: lab.host(name).address };
}

function knownHostsFile(name: string, lines: readonly string[]): string {
  const path = join(lab.root, 'client', name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function knownName(host: string): string {
  const { address, sshPort } = lab.host(host);
  return sshPort === 22 ? address : `[${address}]:${sshPort}`;
}

beforeAll(async () => {
  lab = await startLab({ hosts: ['cn1', 'cn1s'], startNodes: false });
});

afterEach(async () => {
  await Promise.all(shells.splice(0).map((s) => s.close()));
  logs = [];
});

afterAll(async () => {
  await lab?.stop();
});

describe('the ssh2 shell against real OpenSSH servers', () => {
  it('runs a command and returns its exit status, stdout and stderr', async () => {
    const result = await shell().exec(ref('cn1'), sh`echo out; echo err >&2; exit 3`);
    expect(result).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', truncated: false });
  });

  it('runs commands in the host they name (each namespace sees its own address)', async () => {
    const s = shell();
    const cn1 = await s.exec(ref('cn1'), sh`echo "$CELLOPS_LAB_HOST_ROOT"`);
    const cn1s = await s.exec(ref('cn1s'), sh`echo "$CELLOPS_LAB_HOST_ROOT"`);
    expect(cn1.stdout.trim()).toBe(lab.host('cn1').root);
    expect(cn1s.stdout.trim()).toBe(lab.host('cn1s').root);
  });

  it('delivers a secret on stdin and never writes it to the log', async () => {
    const secret = randomBytes(32).toString('hex');
    const target = join(lab.host('cn1').root, 'secret-copy');
    const s = shell();
    // Through sudo, as the bot's writes go: the lab's sudoers allows the host helper and nothing else.
    const command = lab.hostHelper
      ? sh`sudo -n ${lab.hostHelper} --fence lab-test:1 write ${target} && sudo -n ${lab.hostHelper} sha256 ${target}`
      : sh`sudo -n install -m 0600 /dev/stdin ${target} && sudo -n sha256sum ${target}`;
    const result = await s.exec(ref('cn1'), command, { stdin: secret });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe(secret);
    const logged = JSON.stringify(logs);
    expect(logs.length).toBeGreaterThan(0);
    expect(logged).not.toContain(secret);
  });

  it('closes stdin when none is given, so a command reading it does not hang', async () => {
    const result = await shell().exec(ref('cn1'), sh`cat; echo done`);
    expect(result.stdout).toBe('done\n');
  });

  it('refuses a changed host key before running anything, naming both fingerprints', async () => {
    const cn1 = lab.host('cn1');
    const cn1s = lab.host('cn1s');
    // cn1 is listed with cn1s's key: what a man-in-the-middle looks like.
    const path = knownHostsFile('known_hosts_wrong', [`${knownName('cn1')} ${cn1s.hostKeys[0]!.publicKey}`]);
    const marker = join(cn1.root, 'must-not-exist');
    const error = await shell({ knownHostsPath: path })
      .exec(ref('cn1'), sh`touch ${marker}`)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostError);
    expect((error as HostError).code).toBe('host_key_mismatch');
    const message = (error as HostError).message;
    expect(message).toContain('cn1');
    expect(message).toContain(cn1.address);
    expect(message).toContain(cn1.hostKeys[0]!.fingerprint);
    expect(message).toContain(cn1s.hostKeys[0]!.fingerprint);
    expect(() => readFileSync(marker)).toThrow();
  });

  it('refuses an unknown host, naming its fingerprint and how to add it', async () => {
    const path = knownHostsFile('known_hosts_cn1s_only', [
      `${knownName('cn1s')} ${lab.host('cn1s').hostKeys[0]!.publicKey}`,
    ]);
    const error = await shell({ knownHostsPath: path })
      .exec(ref('cn1'), sh`true`)
      .catch((e: unknown) => e);
    expect((error as HostError).code).toBe('host_key_unknown');
    expect((error as HostError).message).toContain(lab.host('cn1').hostKeys[0]!.fingerprint);
    expect((error as HostError).message).toContain('ssh-keyscan');
    expect((error as HostError).message).toContain(lab.host('cn1').address);
  });

  it('refuses a host key marked @revoked even when it is also listed as the host key', async () => {
    const key = lab.host('cn1').hostKeys[0]!.publicKey;
    const path = knownHostsFile('known_hosts_revoked', [`${knownName('cn1')} ${key}`, `@revoked * ${key}`]);
    const error = await shell({ knownHostsPath: path })
      .exec(ref('cn1'), sh`true`)
      .catch((e: unknown) => e);
    expect((error as HostError).code).toBe('host_key_mismatch');
    expect((error as HostError).message).toMatch(/revoked/);
  });

  it('accepts a hashed known_hosts entry', async () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(knownName('cn1')).digest();
    const path = knownHostsFile('known_hosts_hashed', [
      `|1|${salt.toString('base64')}|${hash.toString('base64')} ${lab.host('cn1').hostKeys[0]!.publicKey}`,
    ]);
    const result = await shell({ knownHostsPath: path }).exec(ref('cn1'), sh`echo ok`);
    expect(result.stdout).toBe('ok\n');
  });

  it('asks for the key type that known_hosts lists (an ecdsa-only entry is not met with ed25519)', async () => {
    const path = knownHostsFile('known_hosts_ecdsa', [
      `${knownName('cn1')} ${lab.host('cn1').hostKeys[1]!.publicKey}`,
    ]);
    const result = await shell({ knownHostsPath: path }).exec(ref('cn1'), sh`echo ok`);
    expect(result.stdout).toBe('ok\n');
  });

  it('accepts a host known only by its pinned key (not in known_hosts), asking for that key type', async () => {
    const path = knownHostsFile('known_hosts_empty_for_pin', []);
    const ecdsa = lab.host('cn1').hostKeys[1]!.publicKey;
    const result = await shell({ knownHostsPath: path }).exec(
      { ...ref('cn1'), hostKeys: [ecdsa] },
      sh`echo ok`,
    );
    expect(result.stdout).toBe('ok\n');
  });

  it('refuses a host that presents another key than the pinned one, even when known_hosts lists it, naming both', async () => {
    const cn1 = lab.host('cn1');
    const cn1s = lab.host('cn1s');
    const marker = join(cn1.root, 'must-not-exist-pinned');
    // known_hosts trusts cn1's real key, but the pin (what the console said) is cn1s's: the pin decides.
    const error = await shell()
      .exec({ ...ref('cn1'), hostKeys: [cn1s.hostKeys[0]!.publicKey] }, sh`touch ${marker}`)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostError);
    expect((error as HostError).code).toBe('host_key_mismatch');
    const message = (error as HostError).message;
    expect(message).toContain(cn1.address);
    expect(message).toContain(`presented the host key ssh-ed25519 ${cn1.hostKeys[0]!.fingerprint}`);
    expect(message).toContain(`pinned for it are ssh-ed25519 ${cn1s.hostKeys[0]!.fingerprint}`);
    expect(message).toMatch(/Nothing was run/);
    expect(() => readFileSync(marker)).toThrow();
  });

  it('does not reuse a connection verified by known_hosts for a request under a pin', async () => {
    const s = shell();
    expect((await s.exec(ref('cn1'), sh`echo first`)).stdout).toBe('first\n');
    const wrongPin = { ...ref('cn1'), hostKeys: [lab.host('cn1s').hostKeys[0]!.publicKey] };
    const error = await s.exec(wrongPin, sh`echo second`).catch((e: unknown) => e);
    expect((error as HostError).code).toBe('host_key_mismatch');
  });

  it('lists the keys known_hosts has for an address, patterns included', async () => {
    const cn1 = lab.host('cn1');
    const pattern = cn1.address.replace(/\.\d+$/, '.*');
    const path = knownHostsFile('known_hosts_pattern', [
      `${lab.sshPort === 22 ? pattern : `[${pattern}]:${lab.sshPort}`} ${cn1.hostKeys[0]!.publicKey}`,
    ]);
    const s = shell({ knownHostsPath: path });
    expect(await s.knownHostKeys?.(cn1.address)).toEqual([cn1.hostKeys[0]!.publicKey]);
    expect(await s.knownHostKeys?.('192.0.2.1')).toEqual([]);
  });

  it('fails authentication with a key the host does not accept, saying what to check', async () => {
    const otherKey = join(lab.root, 'client', 'id_other');
    const { runCommand } = await import('../../lab/lab.js');
    await runCommand(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const error = await shell({ privateKeyPath: otherKey })
      .exec(ref('cn1'), sh`true`)
      .catch((e: unknown) => e);
    expect((error as HostError).code).toBe('auth_failed');
    expect((error as HostError).message).toContain('authorized_keys');
  });

  it('reports an unreachable host as host_unreachable, naming it', async () => {
    await lab.makeUnreachable('cn1s');
    try {
      const error = await shell({ connectTimeoutMs: 1_500 })
        .exec(ref('cn1s'), sh`true`)
        .catch((e: unknown) => e);
      expect((error as HostError).code).toBe('host_unreachable');
      expect((error as HostError).retryable).toBe(true);
      expect((error as HostError).message).toContain('cn1s');
    } finally {
      await lab.makeReachable('cn1s');
    }
  });

  it('reaches a host through a bastion, verifying both host keys', async () => {
    const bastion = { host: lab.host('cn1').address, user: lab.user, port: lab.sshPort };
    const result = await shell({ bastion }).exec(ref('cn1s'), sh`echo "$CELLOPS_LAB_HOST_ROOT"`);
    expect(result.stdout.trim()).toBe(lab.host('cn1s').root);

    const onlyTarget = knownHostsFile('known_hosts_no_bastion', [
      `${knownName('cn1s')} ${lab.host('cn1s').hostKeys[0]!.publicKey}`,
    ]);
    const error = await shell({ bastion, knownHostsPath: onlyTarget })
      .exec(ref('cn1s'), sh`true`)
      .catch((e: unknown) => e);
    expect((error as HostError).code).toBe('host_key_unknown');
    expect((error as HostError).message).toContain(lab.host('cn1').address);
  });

  it('kills a command that outlives its timeout', async () => {
    const error = await shell()
      .exec(ref('cn1'), sh`sleep 30`, { timeoutMs: 500 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StepTimeoutError);
    expect((error as StepTimeoutError).message).toContain('cn1');
  });

  it('stops a command when the run is aborted', async () => {
    const controller = new AbortController();
    const pending = shell().exec(ref('cn1'), sh`sleep 30`, { signal: controller.signal });
    controller.abort(new Error('run aborted by U0APPROVER'));
    await expect(pending).rejects.toThrow('run aborted by U0APPROVER');
  });

  it('reports a connection lost mid-command as an unknown outcome, not as an exit status', async () => {
    const error = await shell()
      .exec(ref('cn1'), sh`kill -9 $PPID`)
      .catch((e: unknown) => e);
    expect((error as HostError).code).toBe('host_unreachable');
    expect((error as HostError).message).toMatch(/unknown/);
  });

  it('bounds captured output and says it was truncated', async () => {
    const result = await shell({}, 1024).exec(
      ref('cn1'),
      sh`head -c 100000 /dev/zero | tr '\\0' a; echo tail >&2`,
    );
    expect(result.exitCode).toBe(0);
    expect(result.stdout.length).toBe(1024);
    expect(result.stderr).toBe('tail\n');
    expect(result.truncated).toBe(true);
  });

  it('reuses one connection per host across commands', async () => {
    const s = shell();
    // $PPID is the sshd session process; the grandparent is the per-connection sshd.
    const first = await s.exec(ref('cn1'), sh`ps -o ppid= -p $PPID`);
    const second = await s.exec(ref('cn1'), sh`ps -o ppid= -p $PPID`);
    expect(first.stdout.trim()).not.toBe('');
    expect(second.stdout.trim()).toBe(first.stdout.trim());
    const other = shell();
    const third = await other.exec(ref('cn1'), sh`ps -o ppid= -p $PPID`);
    expect(third.stdout.trim()).not.toBe(first.stdout.trim());
  });

  it('connects again after the connection was closed', async () => {
    const s = shell();
    await s.exec(ref('cn1'), sh`true`);
    // Kill this connection's sshd (the shell's parent) from the inside: the next command must open a new one.
    await s.exec(ref('cn1'), sh`kill -9 $PPID`).catch(() => undefined);
    const again = await s.exec(ref('cn1'), sh`echo back`);
    expect(again.stdout).toBe('back\n');
  });
});
