/**
 * The monitored side of bench/monitor-scale.bench.ts, in its own process so that its CPU and memory are
 * measured apart from the 1,000 stand-in endpoints. Arguments: stand-in base URL, node count, seconds.
 * Prints one JSON line with the measurements.
 */
import { createNodeRpc } from '../src/adapters/rpc/node-rpc.js';
import { createSystemClock } from '../src/infra/system-clock.js';
import { createMemoryIncidentStore } from '../src/monitor/incidents.js';
import { createMonitor } from '../src/monitor/monitor.js';
import { createMonitorMetrics } from '../src/monitor/metrics.js';
import type { Chat } from '../src/ports/chat.js';
import type { NodeRpc } from '../src/ports/node-rpc.js';
import { FakeShell } from '../test/fakes/fake-shell.js';
import { memoryCellState, monitorConfig } from '../test/support/monitor-fixtures.js';
import { createSilentLogger } from '../test/support/silent-logger.js';

const [baseUrl = '', countText = '1000', secondsText = '60'] = process.argv.slice(2);
const count = Number(countText);
const seconds = Number(secondsText);
const WARMUP_MS = 5_000;

const silent = createSilentLogger();

async function main(): Promise<void> {
  const nodes: Record<string, Record<string, unknown>> = {};
  for (let i = 0; i < count; i++) {
    const name = `n${String(i).padStart(4, '0')}`;
    nodes[name] = {
      role: i % 100 === 0 ? 'pn' : 'cn',
      host: '127.0.0.1',
      metrics: `${baseUrl}/${name}/metrics`,
    };
  }
  const config = monitorConfig({ monitor: { interval: '1s' }, nodes });
  let posts = 0;
  const chat: Chat = {
    post: async (m) => ({ channel: m.channel, ts: String(++posts) }),
    update: async () => undefined,
    postEphemeral: async () => undefined,
    permalink: async () => undefined,
    usergroupMembers: async () => [],
  };
  const clock = createSystemClock();
  const metrics = createMonitorMetrics();
  const nodeRpc = createNodeRpc({
    shell: new FakeShell(),
    attachCommand: 'kcn attach --exec {js} {dataDir}/klay.ipc',
    logger: silent,
  });
  // Counts probes, so that CPU can be given per probe too: on a loaded machine fewer probes complete.
  let started = 0;
  const rpc: NodeRpc = {
    ...nodeRpc,
    health: (node, options) => {
      started++;
      return nodeRpc.health(node, options);
    },
  };
  const monitor = createMonitor({
    config,
    rpc,
    chat,
    clock,
    logger: silent,
    store: createMemoryIncidentStore({ clock }),
    state: memoryCellState(),
    metrics,
  });
  const baselineRssMb = process.memoryUsage().rss / 1024 / 1024;
  monitor.start();
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  const startedBefore = started;
  let maxRss = 0;
  const rssTimer = setInterval(() => {
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }, 250);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
  clearInterval(rssTimer);
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = performance.now() - wallStart;
  const measuredProbes = started - startedBefore;
  const status = await monitor.status();
  const rendered = (await metrics.render()).split('\n');
  const total = (prefix: string) =>
    rendered.filter((l) => l.startsWith(prefix)).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  const probes = total('cellops_probe_duration_seconds_count');
  const latencySumS = total('cellops_probe_duration_seconds_sum');
  await monitor.stop();
  process.stdout.write(
    `${JSON.stringify({
      cpuShare: (cpu.user + cpu.system) / 1_000 / wallMs,
      cpuMsPerProbe: (cpu.user + cpu.system) / 1_000 / Math.max(1, measuredProbes),
      measuredProbes,
      meanProbeMs: probes > 0 ? (1_000 * latencySumS) / probes : Number.NaN,
      maxRssMb: maxRss / 1024 / 1024,
      baselineRssMb,
      heapUsedMb: process.memoryUsage().heapUsed / 1024 / 1024,
      probes,
      healthy: status.nodes.filter((n) => n.condition === 'healthy').length,
      nodes: status.nodes.length,
      posts,
    })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  },
);
