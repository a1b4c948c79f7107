/**
 * The snapshot failover end to end in the test lab: the engine on a real Redis, the registry's failover
 * runbook, real OpenSSH hosts in network namespaces, and the real EC2 adapter speaking HTTP to the local
 * EC2 endpoint, whose calls happen to the lab (test/support/lab-snapshot.ts). The replacement is a host
 * whose SSH host key is known only from the console output the endpoint serves.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintSha256 } from '../../../src/ports/host-key.js';
import { SNAPSHOT_FACTS } from '../../../src/runbooks/failover-facts.js';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { newHostKey } from '../../../src/sandbox/sim-cloud-console.js';
import type { Lab } from '../../lab/lab.js';
import {
  captureLog,
  makeLagging,
  startLabFailover,
  type LabFailover,
  type RecordedCommand,
} from '../../support/lab-failover.js';
import {
  SNAPSHOT_IDS,
  inReplacement,
  prepareSnapshotCell,
  snapshotLabRunbooks,
  snapshotLabPaths,
  snapshotOverrides,
  startSnapshotEndpoint,
  startSnapshotLab,
  type SnapshotEndpoint,
} from '../../support/lab-snapshot.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';
import type { RecordedCall } from '../../support/ec2-endpoint.js';

const RUN_TIMEOUT_MS = 120_000;
const canRun = process.getuid?.() === 0;

let redis: RedisServer;
let lab: Lab;

beforeAll(async () => {
  if (!canRun) return;
  redis = await startRedis();
  lab = await startSnapshotLab();
  await prepareSnapshotCell(lab);
  makeLagging(lab, 'cn2');
}, 120_000);

afterAll(async () => {
  await lab?.stop();
  await redis?.stop();
});

interface Failover {
  readonly run: RunRecord;
  readonly h: LabFailover;
  readonly ec2: SnapshotEndpoint;
  close(): Promise<void>;
}

/** Runs `/failover cn2` through the engine, every approval given; `consoleKeys` replaces the console's keys. */
async function failover(consoleKeys?: readonly string[]): Promise<Failover> {
  const prefix = `cellops:test:lab-snapshot:${randomBytes(4).toString('hex')}:`;
  const { logger } = captureLog();
  const ec2 = await startSnapshotEndpoint(lab, logger, consoleKeys === undefined ? {} : { consoleKeys });
  const h = startLabFailover({
    lab,
    redisUrl: redis.url,
    prefix,
    logger,
    overrides: snapshotOverrides(lab),
    adjust: snapshotLabPaths(lab),
    cloud: ec2.cloud,
    runbooks: snapshotLabRunbooks(),
  });
  const close = async () => {
    await h.close();
    await ec2.close();
  };
  try {
    const started = await h.start('failover', { cn: 'cn2' });
    return { run: await h.finished(started.id, RUN_TIMEOUT_MS), h, ec2, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function toReplacement(h: LabFailover): RecordedCommand[] {
  return h.meter.commands.filter((c) => c.host.address === lab.host('cn2r').address);
}

function fingerprintOf(publicKey: string): string {
  return fingerprintSha256(Buffer.from(publicKey.split(' ')[1] ?? '', 'base64'));
}

function answered(calls: readonly RecordedCall[], action: string, instanceId?: string): RecordedCall {
  const call = calls.find(
    (c) => c.action === action && (instanceId === undefined || c.params['InstanceId.1'] === instanceId),
  );
  if (call?.answered === undefined)
    throw new Error(`no answered ${action} in ${calls.map((c) => c.action).join(', ')}`);
  return call;
}

describe.skipIf(!canRun)(
  'snapshot failover in the lab: a console key the replacement does not present',
  () => {
    it(
      'refuses a replacement that presents another key than its console printed: nothing runs there, no key reaches it',
      async () => {
        const impostorKey = newHostKey();
        const f = await failover([impostorKey]);
        const { run, h, ec2: endpoint } = f;
        try {
          expect(run.status).toBe('failed');
          const failed = run.steps.find((s) => s.status === 'failed');
          expect(failed?.id).toBe('replacement-host-key');
          // It says why, with the fingerprints expected and presented.
          const presented = lab.host('cn2r').hostKeys.map((k) => k.fingerprint);
          expect(run.error).toContain(fingerprintOf(impostorKey));
          expect(presented.some((f) => run.error?.includes(f))).toBe(true);
          expect(run.error).toMatch(/nothing was run there/);
          // Every attempt on the replacement was refused at the handshake, and no stdin (key) went to it.
          const attempts = toReplacement(h);
          expect(attempts.length).toBeGreaterThan(0);
          for (const attempt of attempts) {
            expect(attempt.exitCode).toBeUndefined();
            expect(attempt.failed).toMatch(/host key/);
            expect(attempt.stdin).toBeUndefined();
          }
          // cn2's key is nowhere on the replacement, which still runs its own identity from its own disk.
          const dataDir = lab.host('cn2').dataDir;
          const mounted = await inReplacement(lab, ['findmnt', '-n', dataDir]);
          expect(mounted.stdout.trim()).toBe('');
          const grep = await inReplacement(lab, [
            'grep',
            '-rl',
            lab.host('cn2').initialNodekey,
            lab.host('cn2r').root,
          ]);
          expect(grep.stdout.trim()).toBe('');
          expect(await lab.isNodeRunning('cn2')).toBe(true);
          expect(endpoint.endpoint.calls.some((c) => c.action === 'StopInstances')).toBe(false);
          // kpnd is back on pn1.
          expect(await lab.isNodeRunning('pn1')).toBe(true);
        } finally {
          await f.close();
        }
      },
      RUN_TIMEOUT_MS + 30_000,
    );
  },
);

describe.skipIf(!canRun)(
  'snapshot failover in the lab: a replacement whose key only its console tells',
  () => {
    let f: Failover;
    let calls: readonly RecordedCall[];

    beforeAll(async () => {
      f = await failover();
      calls = f.ec2.endpoint.calls;
    }, RUN_TIMEOUT_MS + 30_000);

    afterAll(async () => {
      await f?.close();
    });

    it('completes with the key from the console pinned, and the replacement serves cn2', async () => {
      const { run, h, ec2: endpoint } = f;
      expect(run.error).toBeUndefined();
      expect(run.status).toBe('succeeded');

      const realKeys = lab.host('cn2r').hostKeys.map((k) => k.publicKey);
      expect(run.facts[SNAPSHOT_FACTS.hostKeys]).toEqual(realKeys);
      expect(run.facts[SNAPSHOT_FACTS.hostKeySource]).toBe('console');
      // The console was read while still empty (as after boot), then showed the block.
      const consoleCalls = endpoint.endpoint.calls.filter((c) => c.action === 'GetConsoleOutput');
      expect(consoleCalls.length).toBeGreaterThan(1);
      // Every command to the replacement went under that pin, and none before the console was read.
      const commands = toReplacement(h);
      expect(commands.length).toBeGreaterThan(5);
      const lastConsole = consoleCalls[consoleCalls.length - 1]!;
      for (const c of commands) {
        expect(c.host.hostKeys).toEqual(realKeys);
        expect(c.start).toBeGreaterThan(lastConsole.answered ?? Infinity);
      }
      // The replacement runs cn2's identity from the restored chaindata volume.
      const cn2 = lab.host('cn2');
      const installed = await inReplacement(lab, ['cat', join(cn2.dataDir, 'klay', 'nodekey')]);
      expect(installed.stdout.trim()).toBe(cn2.initialNodekey);
      const chaindata = await inReplacement(lab, [
        'cat',
        join(cn2.dataDir, 'klay', 'chaindata', '000001.ldb'),
      ]);
      expect(chaindata.stdout).toBe('blocks');
      expect(endpoint.endpoint.addressHolder(SNAPSHOT_IDS.eip)).toBe(run.facts[SNAPSHOT_FACTS.instanceId]);
      expect(endpoint.endpoint.instanceState(SNAPSHOT_IDS.cn2)).toBe('stopped');
    });

    // Order of docs/runbooks.md §Snapshot failover, from recorded commands and API calls. The reordering of
    // the steps is built on another branch (issue 10 items 2–4); these fail before it is merged.
    describe('in the order of docs/runbooks.md §Snapshot failover', () => {
      it("answers StopInstances of the failed CN before cn2's key is written to the replacement", () => {
        const stop = answered(calls, 'StopInstances', SNAPSHOT_IDS.cn2);
        const write = toReplacement(f.h).find(
          (c) => c.stdin !== undefined && c.command.includes('klay/nodekey'),
        );
        expect(write).toBeDefined();
        expect(stop.answered!).toBeLessThan(write!.start);
      });

      it('asks for an approval between installing the key and starting kcnd', () => {
        const installEnd = f.run.steps.find((s) => s.id === 'install-nodekey')?.endedAt ?? Infinity;
        const start = f.run.steps.find((s) => /start-kcnd|start/.test(s.id) && s.approvals.length > 0);
        expect(start).toBeDefined();
        expect(start!.approvals[0]!.at).toBeGreaterThanOrEqual(installEnd);
      });

      it('runs sync on the PN after kpnd stopped and before CreateSnapshot', () => {
        const pn1 = lab.host('pn1').address;
        const onPn = f.h.meter.commands.filter((c) => c.host.address === pn1);
        const stop = onPn.find((c) => /stop kpnd/.test(c.command));
        const sync = onPn.find((c) => /(^|[\s'])sync([\s']|$)/.test(c.command));
        const snapshot = answered(calls, 'CreateSnapshot');
        expect(stop).toBeDefined();
        expect(sync).toBeDefined();
        expect(sync!.start).toBeGreaterThan(stop!.end);
        expect(sync!.end).toBeLessThan(snapshot.received);
      });
    });
  },
);
