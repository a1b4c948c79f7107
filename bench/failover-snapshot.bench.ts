/**
 * The lab's snapshot failover with approvals given automatically (test/support/lab-snapshot.ts): the engine
 * on a loopback Redis, real OpenSSH in network namespaces, the real EC2 adapter over HTTP to the local EC2
 * endpoint (which images pn1's data directory into a loop-mounted ext4 volume), and a replacement whose
 * SSH host key is pinned from its console output (empty for its first 2 s, as after boot).
 *
 * Rows:
 * - total wall time, from `engine.start` to the run's end (goal < 30 s), compared with the time the same
 *   run spent inside SSH commands, EC2 API calls and its waits on nodes and EC2 (the union of those
 *   intervals): what the work itself took without the engine's own time;
 * - PN downtime: from the start of `stop kpnd` on pn1 to the end of `start kpnd` there, compared with a
 *   baseline measured on the same lab right after the run without the engine: stop kpnd over ssh2, one
 *   CreateSnapshot call through the same adapter, start kpnd (goal: no more than that; < 2 s in the lab);
 * - one row per step.
 *
 * Every run gets a fresh lab. Needs root; otherwise it prints one row saying so. SNAPSHOT_BENCH_RUNS sets
 * the number of runs (default 5).
 */
import { randomBytes } from 'node:crypto';
import { createSshShell } from '../src/adapters/ssh/ssh-shell.js';
import { RUN_ID_TAG, type Cloud } from '../src/ports/cloud.js';
import { nodeCommands } from '../src/runbooks/node-ops.js';
import { sh } from '../src/ports/shell-command.js';
import type { RunRecord } from '../src/runbooks/types.js';
import type { Lab } from '../test/lab/lab.js';
import { captureLog, makeLagging, startLabFailover, type BusyMeter } from '../test/support/lab-failover.js';
import {
  SNAPSHOT_IDS,
  prepareSnapshotCell,
  snapshotLabRunbooks,
  snapshotLabPaths,
  snapshotOverrides,
  startSnapshotEndpoint,
  startSnapshotLab,
} from '../test/support/lab-snapshot.js';
import { startRedis } from '../test/support/redis-server.js';
import { compare, summarize, type BenchRow } from './harness.js';

const RUNS = Math.max(1, Number(process.env.SNAPSHOT_BENCH_RUNS ?? 5) || 5);
const RUN_TIMEOUT_MS = 120_000;

interface Sample {
  readonly totalMs: number;
  /** Inside SSH commands, EC2 calls, NodeRpc calls or the runbook's sleeps. */
  readonly busyMs: number;
  readonly pnDownMs: number;
  readonly baselinePnDownMs: number;
  readonly steps: { id: string; ms: number }[];
}

/** The Cloud port with every call timed into the meter (as an `rpc` interval: a call to a remote API). */
function timedCloud(cloud: Cloud, meter: BusyMeter): Cloud {
  return new Proxy(cloud, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        meter.time('rpc', () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
    },
  });
}

/** From the start of `stop <service>` to the end of the next `start <service>` on `address`. */
function downtime(meter: BusyMeter, address: string, service: string): number {
  const onHost = meter.commands.filter((c) => c.host.address === address);
  const stop = onHost.find((c) => c.command.includes(`stop ${service}`));
  const start = onHost.find(
    (c) => c.command.includes(`start ${service}`) && c.start > (stop?.end ?? Infinity),
  );
  if (!stop || !start) throw new Error(`no ${service} stop and start on ${address}`);
  return start.end - stop.start;
}

async function oneRun(redisUrl: string): Promise<Sample> {
  const lab: Lab = await startSnapshotLab();
  try {
    if (!lab.namespaces) throw new Error(`the lab has no network namespaces: ${lab.skipReason ?? ''}`);
    await prepareSnapshotCell(lab);
    makeLagging(lab, 'cn2');
    const { logger } = captureLog();
    const ec2 = await startSnapshotEndpoint(lab, logger);
    const late: { meter?: BusyMeter } = {};
    const cloud = new Proxy(ec2.cloud, {
      get(target, prop, receiver) {
        const timed = late.meter ? timedCloud(target, late.meter) : target;
        return Reflect.get(timed, prop, receiver) as unknown;
      },
    });
    const setup = startLabFailover({
      lab,
      redisUrl,
      prefix: `cellops:bench:snapshot:${randomBytes(4).toString('hex')}:`,
      logger,
      overrides: snapshotOverrides(lab),
      adjust: snapshotLabPaths(lab),
      cloud,
      runbooks: snapshotLabRunbooks(),
    });
    late.meter = setup.meter;
    try {
      const started = performance.now();
      const { id } = await setup.start('failover', { cn: 'cn2' });
      const run: RunRecord = await setup.finished(id, RUN_TIMEOUT_MS);
      const ended =
        setup.events.find((e) => e.run.id === id && e.event.type === 'run-finished')?.at ?? performance.now();
      if (run.status !== 'succeeded')
        throw new Error(`the benchmark's failover ended ${run.status}: ${run.error ?? ''}`);
      const pn1 = lab.host('pn1');
      const sample = {
        totalMs: ended - started,
        busyMs: setup.meter.busyMs(started, ended),
        pnDownMs: downtime(setup.meter, pn1.address, pn1.service),
        steps: run.steps
          .filter((s) => s.startedAt !== undefined && s.endedAt !== undefined)
          .map((s) => ({ id: s.id, ms: (s.endedAt ?? 0) - (s.startedAt ?? 0) })),
      };
      return { ...sample, baselinePnDownMs: await directPnDowntime(setup.config, ec2.cloud, pn1) };
    } finally {
      await setup.close();
      await ec2.close();
    }
  } finally {
    await lab.stop();
  }
}

/** stop kpnd, CreateSnapshot, start kpnd: the floor of the PN's downtime, with no engine in between. */
async function directPnDowntime(
  config: ReturnType<typeof startLabFailover>['config'],
  cloud: Cloud,
  pn: Lab['hosts'][string],
): Promise<number> {
  const shell = createSshShell({ ssh: config.ssh, logger: captureLog().logger });
  const host = { name: pn.name, address: pn.address };
  try {
    await shell.exec(host, sh`true`); // connect first: the engine's connection to pn1 was open too
    const start = performance.now();
    await shell.exec(host, nodeCommands.service(config, 'stop', pn.service));
    await cloud.createSnapshot(SNAPSHOT_IDS.pn1Data, 'bench baseline', { [RUN_ID_TAG]: 'bench-baseline' });
    await shell.exec(host, nodeCommands.service(config, 'start', pn.service));
    return performance.now() - start;
  } finally {
    await shell.close();
  }
}

export async function run(): Promise<BenchRow[]> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0)
    return [
      {
        name: 'failover (lab, snapshot)',
        samples: 0,
        p50: Number.NaN,
        p99: Number.NaN,
        note: 'not run: the lab needs root for its network namespaces and loop devices',
      },
    ];
  const redis = await startRedis();
  const samples: Sample[] = [];
  try {
    for (let i = 0; i < RUNS; i++) samples.push(await oneRun(redis.url));
  } finally {
    await redis.stop();
  }
  const busy = summarize(
    'snapshot failover busy time (same run)',
    samples.map((s) => s.busyMs),
    { note: 'union of time inside SSH commands, EC2 calls, NodeRpc calls and the runbook’s waits' },
  );
  const total = compare(
    summarize(
      'snapshot failover total wall time (lab)',
      samples.map((s) => s.totalMs),
      { note: 'goal < 30000 ms; approvals automatic; console empty for 2 s after boot' },
    ),
    busy,
  );
  const pnBaseline = summarize(
    'PN downtime baseline: stop + CreateSnapshot + start, no engine',
    samples.map((s) => s.baselinePnDownMs),
  );
  const pnDown = compare(
    summarize(
      'snapshot failover PN downtime (kpnd stop → start)',
      samples.map((s) => s.pnDownMs),
      { note: 'goal ≤ baseline and < 2000 ms in the lab' },
    ),
    pnBaseline,
  );
  const stepIds = samples[0]?.steps.map((s) => s.id) ?? [];
  const steps = stepIds.map((id) =>
    summarize(
      `  step ${id}`,
      samples.map((s) => s.steps.find((x) => x.id === id)?.ms ?? Number.NaN),
    ),
  );
  return [total, busy, pnDown, pnBaseline, ...steps];
}
