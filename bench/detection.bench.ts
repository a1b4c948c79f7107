/**
 * Detection latency with the default settings (interval 3s, stall 15s): from the moment a stand-in node's
 * height stops to the alert's chat post. 20 trials run at once, each its own monitor over its own two
 * nodes (a CN and a PN) on one loopback stand-in server, each with a random probe phase, in real time, so
 * the whole benchmark takes about half a minute. Goal: p95 ≤ 20 s, and the alert within one interval
 * of the stall threshold being crossed (latency − stall ≤ interval).
 */
import { createNodeRpc } from '../src/adapters/rpc/node-rpc.js';
import { createSystemClock } from '../src/infra/system-clock.js';
import { createMemoryIncidentStore } from '../src/monitor/incidents.js';
import { createMonitor } from '../src/monitor/monitor.js';
import type { Chat } from '../src/ports/chat.js';
import { FakeShell } from '../test/fakes/fake-shell.js';
import { startStandIns } from '../test/support/metrics-stand-ins.js';
import { memoryCellState, monitorConfig } from '../test/support/monitor-fixtures.js';
import { createSilentLogger } from '../test/support/silent-logger.js';
import { percentile, summarize, type BenchRow } from './harness.js';

const TRIALS = 20;

const silent = createSilentLogger();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface TrialResult {
  readonly detectionMs: number;
  readonly recoveryMs: number;
}

async function trial(
  index: number,
  standIns: Awaited<ReturnType<typeof startStandIns>>,
): Promise<TrialResult> {
  const cn = standIns.add(`t${index}-cn1`);
  const pn = standIns.add(`t${index}-pn1`);
  const config = monitorConfig({
    nodes: {
      cn1: { role: 'cn', host: '127.0.0.1', metrics: cn.url },
      pn1: { role: 'pn', host: '127.0.0.1', metrics: pn.url },
    },
  });
  let postedAt: number | undefined;
  let recoveredAt: number | undefined;
  let notify: () => void = () => undefined;
  let notifyRecovered: () => void = () => undefined;
  const posted = new Promise<void>((resolve) => (notify = resolve));
  const recovered = new Promise<void>((resolve) => (notifyRecovered = resolve));
  const chat: Chat = {
    post: async (message) => {
      if (message.threadTs === undefined && postedAt === undefined && message.text.startsWith('cn1')) {
        postedAt = performance.now();
        notify();
      }
      if (message.threadTs !== undefined && recoveredAt === undefined && message.text.includes('Recovered')) {
        recoveredAt = performance.now();
        notifyRecovered();
      }
      return { channel: message.channel, ts: String(performance.now()) };
    },
    update: async () => undefined,
    postEphemeral: async () => undefined,
    permalink: async () => undefined,
    usergroupMembers: async () => [],
  };
  const clock = createSystemClock();
  const monitor = createMonitor({
    config,
    rpc: createNodeRpc({
      shell: new FakeShell(),
      attachCommand: 'kcn attach --exec {js} {dataDir}/klay.ipc',
      logger: silent,
    }),
    chat,
    clock,
    logger: silent,
    store: createMemoryIncidentStore({ clock }),
    state: memoryCellState(),
  });
  // A random probe phase relative to the chain's blocks and to the stall.
  await sleep(Math.random() * config.monitor.intervalMs);
  monitor.start();
  await sleep(6_000 + Math.random() * 3_000);
  await cn.stall();
  const stalledAt = performance.now();
  await Promise.race([posted, sleep(60_000)]);
  if (postedAt === undefined) {
    await monitor.stop();
    throw new Error(`trial ${index}: no alert within 60 s of the stall`);
  }
  // Recovery at a random moment relative to the probes.
  await sleep(3_000 + Math.random() * 3_000);
  cn.resume();
  const resumedAt = performance.now();
  await Promise.race([recovered, sleep(60_000)]);
  await monitor.stop();
  if (recoveredAt === undefined) throw new Error(`trial ${index}: no recovery note within 60 s`);
  return { detectionMs: postedAt - stalledAt, recoveryMs: recoveredAt - resumedAt };
}

export async function run(): Promise<BenchRow[]> {
  const t0 = Date.now();
  // One block per second, like Kaia.
  const standIns = await startStandIns(() => 1_000_000 + Math.floor((Date.now() - t0) / 1_000));
  try {
    const results = await Promise.all(Array.from({ length: TRIALS }, (_, i) => trial(i, standIns)));
    const latencies = results.map((r) => r.detectionMs);
    const recoveries = results.map((r) => r.recoveryMs);
    const recoveryP95 = percentile(
      [...recoveries].sort((a, b) => a - b),
      95,
    );
    const defaults = monitorConfig().monitor;
    const sorted = [...latencies].sort((a, b) => a - b);
    const p95 = percentile(sorted, 95);
    const overThreshold = latencies.map((l) => l - defaults.stallMs);
    const withinInterval = overThreshold.filter((d) => d <= defaults.intervalMs).length;
    return [
      summarize('detection: stall → alert post (defaults 3s/15s)', latencies, {
        unit: 'ms',
        note: `p95 ${(p95 / 1000).toFixed(1)} s (goal ≤ 20 s); ${TRIALS} concurrent trials, real time`,
      }),
      summarize('detection: latency − stall threshold', overThreshold, {
        unit: 'ms',
        note: `${withinInterval}/${TRIALS} within one interval (${defaults.intervalMs} ms) of the threshold`,
      }),
      summarize('recovery: node moves again → "Recovered" in the thread', recoveries, {
        unit: 'ms',
        note: `p95 ${(recoveryP95 / 1000).toFixed(1)} s (goal ≤ 10 s); ${TRIALS} concurrent trials, real time`,
      }),
    ];
  } finally {
    await standIns.close();
  }
}
