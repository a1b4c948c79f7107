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
import type { Logger } from '../src/ports/logger.js';
import { FakeShell } from '../test/fakes/fake-shell.js';
import { memoryCellState, monitorConfig } from '../test/support/monitor-fixtures.js';

const [baseUrl = '', countText = '1000', secondsText = '60'] = process.argv.slice(2);
const count = Number(countText);
const seconds = Number(secondsText);
const WARMUP_MS = 5_000;

const silent: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silent,
};

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
    metrics,
  });
  const baselineRssMb = process.memoryUsage().rss / 1024 / 1024;
  monitor.start();
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  let maxRss = 0;
  const rssTimer = setInterval(() => {
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }, 250);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
  clearInterval(rssTimer);
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = performance.now() - wallStart;
  const status = await monitor.status();
  const probes = (await metrics.render())
    .split('\n')
    .filter((l) => l.startsWith('cellops_probe_duration_seconds_count'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  await monitor.stop();
  process.stdout.write(
    `${JSON.stringify({
      cpuShare: (cpu.user + cpu.system) / 1_000 / wallMs,
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
