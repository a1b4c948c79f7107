/**
 * The host helper (deploy/host/cellops-host) on real OpenSSH hosts, as the lab installs it: the login user
 * may run the helper through sudo (deploy/host/sudoers, as shipped) and nothing else, and the helper keeps
 * the highest fencing token it has seen for the cell. Two runs race for the cell here through the real
 * Redis lock: once the newer run has acted on a host, the stale one can do nothing there, whatever the
 * bot's own check said a moment before.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCellShell } from '../../../src/adapters/ssh/cell-shell.js';
import { resolveConfig, type CellopsConfig } from '../../../src/config/config.js';
import { configSchema } from '../../../src/config/schema.js';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { createRedisLock } from '../../../src/locks/redis-lock.js';
import type { LockLease } from '../../../src/locks/types.js';
import { sh, shTemplate } from '../../../src/ports/shell-command.js';
import type { HostRef, Shell } from '../../../src/ports/shell.js';
import { CommandFailedError, createNodeOps } from '../../../src/runbooks/node-ops.js';
import { deadline } from '../../../src/adapters/rpc/deadline.js';
import { ipcRecentBlocks } from '../../../src/adapters/rpc/node-ipc.js';
import type { ShellCommand } from '../../../src/ports/shell-command.js';
import { labConfig } from '../../lab/lab-config.js';
import { HOST_HELPER, startLab, type Lab } from '../../lab/lab.js';
import { redisForSuite } from '../../support/redis-suite.js';
import { createSilentLogger } from '../../support/silent-logger.js';

const redis = redisForSuite();
let lab: Lab;
let config: CellopsConfig;
let shell: Shell;
let cn1: HostRef;

beforeAll(async () => {
  lab = await startLab({ hosts: ['cn1'], startNodes: false });
  config = resolveConfig(configSchema.parse(labConfig(lab)));
  shell = createCellShell({ ssh: config.ssh, logger: createSilentLogger() });
  cn1 = { name: 'cn1', address: lab.host('cn1').address };
}, 120_000);

afterAll(async () => {
  await shell?.close();
  await lab?.stop();
});

const opsFor = (lease: LockLease) =>
  createNodeOps({ shell, config, fence: { scope: config.cell, token: lease.fencingToken } });

/** Takes the cell's lock as a run does, lets it lapse, and has a second run take it: the race's two runs. */
async function twoRuns(): Promise<{ stale: LockLease; current: LockLease }> {
  const lock = createRedisLock({
    redis: redis.client(),
    keys: createRedisKeys(`cellops:fence-${Math.random().toString(36).slice(2)}:`),
    clock: createSystemClock(),
  });
  const holder = (runId: string) => ({
    requester: 'U0TEST',
    runbook: 'failover',
    node: 'cn1',
    runId,
    since: Date.now(),
  });
  const stale = await lock.acquire('cell', 200, holder('run-a'));
  await delay(300);
  const current = await lock.acquire('cell', 60_000, holder('run-b'));
  return { stale, current };
}

const asRoot = (argv: readonly string[]) => lab.run('cn1', argv);

describe('the host helper with the shipped sudoers', () => {
  it('is the only thing the login user may run as root', async () => {
    const key = join(lab.host('cn1').dataDir, 'klay', 'nodekey');
    const ssh = createCellShell({
      ssh: { ...config.ssh, hostHelper: undefined },
      logger: createSilentLogger(),
    });
    try {
      for (const command of [
        sh`sudo -n cat -- ${key}`,
        sh`sudo -n sh -c ${'id -u'}`,
        sh`sudo -n systemctl stop kcnd`,
      ]) {
        const result = await ssh.exec(cn1, command);
        expect(result.exitCode, command).not.toBe(0);
        expect(result.stdout).toBe('');
      }
      // The helper itself refuses what host.conf does not list, and a destructive verb without a token.
      const outside = await ssh.exec(cn1, sh`sudo -n ${HOST_HELPER} read /etc/shadow`);
      expect(outside.exitCode).toBe(77);
      expect(outside.stdout).toBe('');
      const linked = join(lab.host('cn1').dataDir, 'shadow-link');
      await asRoot(['ln', '-sf', '/etc/shadow', linked]);
      expect((await ssh.exec(cn1, sh`sudo -n ${HOST_HELPER} read ${linked}`)).exitCode).toBe(77);
      const unfenced = await ssh.exec(cn1, sh`sudo -n ${HOST_HELPER} remove ${key}`);
      expect(unfenced.exitCode).toBe(64);
      expect(unfenced.stderr).toMatch(/fencing token/);
      expect(readFileSync(key, 'utf8')).toBe(lab.host('cn1').initialNodekey);
    } finally {
      await ssh.close();
    }
  });

  it("refuses a stale run's verbs on a host where a newer run has acted, and keeps the newer token", async () => {
    const { stale, current } = await twoRuns();
    expect(current.fencingToken).toBeGreaterThan(stale.fencingToken);
    const file = join(lab.host('cn1').dataDir, 'klay', 'race-1');
    // The stale run passed the bot's own check before its lease lapsed; its command arrives now.
    await opsFor(current).writeFile(cn1, file, 'newer\n');
    const refused = opsFor(stale).move(cn1, file, `${file}.aside`);
    await expect(refused).rejects.toThrow(CommandFailedError);
    await expect(refused).rejects.toThrow(/exit status 75: .*fencing token \d+ .* older than token \d+/);
    await expect(opsFor(stale).exists(cn1, file)).rejects.toThrow(/older than token/);
    expect(readFileSync(file, 'utf8')).toBe('newer\n');
    expect(existsSync(`${file}.aside`)).toBe(false);
    const state = join(lab.host('cn1').root, 'var', 'lib', 'cellops-host', `fence-${config.cell}`);
    expect(Number(readFileSync(state, 'utf8'))).toBe(current.fencingToken);
    // The newer run goes on undisturbed.
    await opsFor(current).move(cn1, file, `${file}.aside`);
    expect(existsSync(`${file}.aside`)).toBe(true);
  });

  it('lets no command of the stale run through once the newer one has acted, while both fire at once', async () => {
    const { stale, current } = await twoRuns();
    const file = join(lab.host('cn1').dataDir, 'klay', 'race-2');
    writeFileSync(file, 'start\n');
    let newerActed = false;
    const staleAttempts: Promise<{ after: boolean; ok: boolean }>[] = [];
    const stop = AbortSignal.timeout(4_000);
    const fire = async () => {
      while (!stop.aborted && staleAttempts.length < 40) {
        const after = newerActed;
        const attempt = opsFor(stale)
          .writeFile(cn1, file, 'stale\n')
          .then(
            () => ({ after, ok: true }),
            () => ({ after, ok: false }),
          );
        staleAttempts.push(attempt);
        await delay(after ? 20 : 5);
        if (after && staleAttempts.length > 20) return;
      }
    };
    const racing = fire();
    await delay(30);
    await opsFor(current).writeFile(cn1, file, 'newer\n');
    newerActed = true;
    await racing;
    const results = await Promise.all(staleAttempts);
    const afterwards = results.filter((r) => r.after);
    expect(afterwards.length).toBeGreaterThan(0);
    expect(afterwards.filter((r) => r.ok)).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe('newer\n');
  });

  it('passes the IPC console exactly the questions cellops asks, and no other expression', async () => {
    const host = lab.host('cn1');
    await lab.startNode('cn1');
    // The recent-blocks loop as the RPC adapter builds it (the lab's node cannot run it, and says so).
    const sent: ShellCommand[] = [];
    const recorder: Shell = {
      exec: (_host, command) => {
        sent.push(command);
        return Promise.resolve({
          exitCode: 1,
          stdout: '',
          stderr: 'recorded',
          truncated: false,
          durationMs: 0,
        });
      },
      close: () => Promise.resolve(),
    };
    const endpoint = {
      name: 'cn1',
      host: cn1,
      metricsUrl: host.metricsUrl,
      dataDir: host.dataDir,
      binary: 'kcn' as const,
    };
    await ipcRecentBlocks(
      { shell: recorder, attachCommand: config.ssh.attachCommand },
      endpoint,
      30,
      deadline({ timeoutMs: 5_000 }),
      1200,
    ).catch(() => undefined);
    expect(sent).toHaveLength(1);
    const loop = await shell.exec(cn1, sent[0]!);
    expect(loop.stderr).toMatch(/not supported by the lab's node stand-in/);
    const attach = (js: string) =>
      shell.exec(cn1, shTemplate(config.ssh.attachCommand, { binary: 'kcn', js, dataDir: host.dataDir }));
    expect((await attach('kaia.nodeAddress')).stdout).toContain(host.initialNodeAddress);
    const other = await attach('admin.addPeer("kni://00@10.0.0.1:32323")');
    expect(other.exitCode).toBe(77);
    expect(other.stderr).toMatch(/attach may only ask what cellops asks/);
  });
});
