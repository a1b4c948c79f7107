/**
 * `npm run bench -- switchover`: the planned switchover next to the unplanned failover, in the lab of real
 * OpenSSH hosts (network namespaces, arping installed as on real hosts), approvals given at once by a
 * second person, 1-second blocks. One lab serves every run: each timed run is followed by an untimed
 * rebuild-standby, so the next one has a standby, the CN moving back and forth between cn1 and cn1s.
 *
 * Rows, p50/p99 over SWITCHOVER_BENCH_RUNS runs of each (default 5):
 * - stop→signing gap: from the moment the node running cn1's key stopped (its stand-in's signing record
 *   ends: SIGTERM for the switchover, SIGKILL — the failure — for the failover, whose run starts right
 *   after) to the moment the other machine runs cn1's key and signs (its record begins);
 * - blocks missed: blocks whose committee holds cn1 and whose committers do not, between its last
 *   signature on the old machine and its first on the new one, read from a PN's JSON-RPC (goal ≤ 3 for
 *   the switchover);
 * - the switchover's "switch" step and the failover's "move-ip" step, and each whole run.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createNodeRpc } from '../src/adapters/rpc/node-rpc.js';
import { createSshShell } from '../src/adapters/ssh/ssh-shell.js';
import { createLogger } from '../src/infra/logger.js';
import { createRedisCellState } from '../src/infra/redis-cell-state.js';
import { countMissedBlocks } from '../src/runbooks/switchover-ops.js';
import type { RunRecord } from '../src/runbooks/types.js';
import { readJson, type SigningRecord } from '../test/lab/lab-state.js';
import { startLab, type Lab } from '../test/lab/lab.js';
import { startLabFailover, writeLabBackup, type LabFailover } from '../test/support/lab-failover.js';
import { startRedis } from '../test/support/redis-server.js';
import { summarize, type BenchRow } from './harness.js';

const RUNS = Math.max(5, Number(process.env.SWITCHOVER_BENCH_RUNS ?? 5) || 5);
const RUN_TIMEOUT_MS = 120_000;

interface Sample {
  readonly gapMs: number;
  readonly missed: number;
  readonly stepMs: number;
  readonly runMs: number;
}

async function runOk(
  cell: LabFailover,
  runbook: string,
  params: Record<string, unknown>,
): Promise<RunRecord> {
  const started = await cell.start(runbook, params);
  const run = await cell.finished(started.id, RUN_TIMEOUT_MS);
  if (run.status !== 'succeeded')
    throw new Error(`${runbook} ${JSON.stringify(params)} ended ${run.status}: ${run.error ?? ''}`);
  return run;
}

function signingRecords(lab: Lab, address: string): SigningRecord[] {
  const dir = join(lab.root, 'signing');
  return readdirSync(dir)
    .map((file) => readJson<SigningRecord>(join(dir, file)))
    .filter((r): r is SigningRecord => r !== undefined && r.address.toLowerCase() === address)
    .sort((a, b) => a.from - b.from);
}

/** End of the last run of `address` that began before `before`, to the start of the first that began after. */
function gapOf(lab: Lab, address: string, before: number): number {
  const records = signingRecords(lab, address);
  const old = records.filter((r) => r.from < before).at(-1);
  const next = records.find((r) => r.from >= before);
  if (!old || !next) throw new Error('bench: no signing records around the move');
  return next.from - (old.to ?? old.beat);
}

function stepMs(run: RunRecord, id: string): number {
  const step = run.steps.find((s) => s.id === id);
  return step?.startedAt !== undefined && step.endedAt !== undefined
    ? step.endedAt - step.startedAt
    : Number.NaN;
}

export async function run(): Promise<BenchRow[]> {
  const redis = await startRedis();
  const lab = await startLab({ hosts: ['cn1', 'cn1s', 'pn1', 'pn2'] });
  const logger = createLogger({ level: 'silent' });
  try {
    if (!lab.namespaces)
      return [
        {
          name: 'switchover (lab)',
          samples: 0,
          p50: Number.NaN,
          p99: Number.NaN,
          note: `skipped: ${lab.skipReason ?? ''}`,
        },
      ];
    const cell = startLabFailover({
      lab,
      redisUrl: redis.url,
      prefix: `cellops:bench:switchover:${randomBytes(3).toString('hex')}:`,
      logger,
    });
    const state = createRedisCellState({ redis: cell.redis, keys: cell.keys });
    const shell = createSshShell({ ssh: cell.config.ssh, logger });
    const rpc = createNodeRpc({ shell, attachCommand: cell.config.ssh.attachCommand, logger });
    const pn = cell.config.nodes.pn1!;
    const address = lab.host('cn1').initialNodeAddress;
    writeLabBackup(lab, 'cn1', lab.host('cn1').initialNodekey);
    const missedSince = async (height: number): Promise<number> =>
      countMissedBlocks(await rpc.recentBlocks(pn.endpoint, 60, { timeoutMs: 5_000 }), address, height).count;
    const switchovers: Sample[] = [];
    const failovers: Sample[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        const before = Date.now();
        const stopHeight = lab.chain.height();
        const planned = await runOk(cell, 'failover', { cn: 'cn1', switchover: true });
        switchovers.push({
          gapMs: gapOf(lab, address, before),
          missed: await missedSince(stopHeight),
          stepMs: stepMs(planned, 'switch'),
          runMs: (planned.endedAt ?? Date.now()) - planned.createdAt,
        });
        await runOk(cell, 'rebuild-standby', { cn: 'cn1' });
        const serving = (await state.role('cn1'))?.servedBy ?? 'cn1';
        const failedAt = Date.now();
        const failedHeight = lab.chain.height();
        await lab.killNode(serving);
        const unplanned = await runOk(cell, 'failover', { cn: 'cn1' });
        failovers.push({
          gapMs: gapOf(lab, address, failedAt),
          missed: await missedSince(failedHeight),
          stepMs: stepMs(unplanned, 'move-ip'),
          runMs: (unplanned.endedAt ?? Date.now()) - unplanned.createdAt,
        });
        await runOk(cell, 'rebuild-standby', { cn: 'cn1' });
        const [sw, fo] = [switchovers.at(-1), failovers.at(-1)];
        process.stderr.write(
          `bench: switchover ${i + 1}/${RUNS}: switchover gap ${sw?.gapMs} ms, ${sw?.missed} missed (the run counted ${JSON.stringify(planned.facts.missedBlocks)}); failover gap ${fo?.gapMs} ms, ${fo?.missed} missed\n`,
        );
      }
    } finally {
      await shell.close();
      await cell.close();
    }
    const rows = (what: string, samples: readonly Sample[], step: string, goal: string): BenchRow[] => [
      summarize(
        `${what}: stop→signing gap`,
        samples.map((s) => s.gapMs),
        { note: goal },
      ),
      summarize(
        `${what}: blocks missed`,
        samples.map((s) => s.missed),
        {
          unit: 'blocks',
          note: `1-second blocks${what === 'switchover' ? '; goal ≤ 3' : ''}`,
        },
      ),
      summarize(
        `${what}: "${step}" step`,
        samples.map((s) => s.stepMs),
      ),
      summarize(
        `${what}: whole run`,
        samples.map((s) => s.runMs),
        { note: 'approvals given at once' },
      ),
    ];
    return [
      ...rows('switchover', switchovers, 'switch', 'planned: key staged, one approval for the gap'),
      ...rows('failover (unplanned)', failovers, 'move-ip', 'from the crash; the run starts at once'),
    ];
  } finally {
    await lab.stop();
    await redis.stop();
  }
}
