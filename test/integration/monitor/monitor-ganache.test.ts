/**
 * The monitor end to end on loopback, in real time: a real ganache JSON-RPC node (a block every second) is
 * the reference endpoint, and kcnd-style Prometheus stand-ins follow its height; the real NodeRpc adapter
 * probes them. Short thresholds keep the test to seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ganache from 'ganache';
import { createNodeRpc } from '../../../src/adapters/rpc/node-rpc.js';
import { createSystemClock } from '../../../src/infra/system-clock.js';
import { createMemoryIncidentStore } from '../../../src/monitor/incidents.js';
import { createMonitor, type Monitor } from '../../../src/monitor/monitor.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { startStandIns, type StandIns } from '../../support/metrics-stand-ins.js';
import { memoryCellState, monitorConfig } from '../../support/monitor-fixtures.js';

let chain: ReturnType<typeof ganache.server> | undefined;
let chainUrl = '';
let standIns: StandIns | undefined;

async function call(method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(chainUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return ((await response.json()) as { result: unknown }).result;
}

async function chainHeight(): Promise<number> {
  return Number.parseInt(String(await call('eth_blockNumber')), 16);
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  // ganache's published option types resolve to `undefined` under NodeNext resolution; these are its
  // documented options (quiet logs, a block every second).
  chain = ganache.server({
    logging: { quiet: true },
    miner: { blockTime: 1 },
    wallet: { totalAccounts: 1 },
  } as never);
  await chain.listen(0, '127.0.0.1');
  chainUrl = `http://127.0.0.1:${chain.address().port}`;
  // Some history first, so that nodes "10 blocks behind" are not clamped at block 0.
  await call('evm_mine', [{ blocks: 50 }]);
  expect(await chainHeight()).toBeGreaterThanOrEqual(50);
  standIns = await startStandIns(chainHeight);
});

afterAll(async () => {
  await standIns?.close();
  await chain?.close();
});

describe('monitor against a ganache reference and Prometheus stand-ins', () => {
  it('detects stall, lag, down and isolation, does not flap around the lag threshold, and resolves recoveries', async () => {
    const s = standIns as StandIns;
    const names = ['cn1', 'cn2', 'cn3', 'cn4', 'cn1s', 'pn1'];
    for (const name of names) s.add(name);
    const config = monitorConfig({
      monitor: {
        interval: '1s',
        lagBlocks: 3,
        for: '3s',
        stall: '4s',
        failures: 2,
        referenceEndpoints: [chainUrl],
      },
      nodes: {
        cn1: { role: 'cn', host: '127.0.0.1', metrics: s.node('cn1').url },
        cn2: { role: 'cn', host: '127.0.0.1', metrics: s.node('cn2').url },
        cn3: { role: 'cn', host: '127.0.0.1', metrics: s.node('cn3').url },
        cn4: { role: 'cn', host: '127.0.0.1', metrics: s.node('cn4').url },
        cn1s: { role: 'standby', host: '127.0.0.1', metrics: s.node('cn1s').url },
        pn1: { role: 'pn', host: '127.0.0.1', metrics: s.node('pn1').url },
      },
    });
    const logger = new RecordingLogger();
    const chat = new FakeChat();
    const monitor: Monitor = createMonitor({
      config,
      rpc: createNodeRpc({
        shell: new FakeShell(),
        attachCommand: 'kcn attach --exec {js} {dataDir}/klay.ipc',
        logger,
      }),
      chat,
      clock: createSystemClock(),
      logger,
      store: createMemoryIncidentStore({ clock: createSystemClock() }),
      state: memoryCellState(),
    });
    const parents = () => chat.posts().filter((p) => p.message.threadTs === undefined);
    const parentOf = (node: string) => parents().find((p) => p.message.text.startsWith(`${node} `));
    const threadOf = (node: string) =>
      chat
        .posts()
        .filter((p) => p.message.threadTs !== undefined && p.message.threadTs === parentOf(node)?.ref.ts)
        .map((p) => p.message.text);

    let flapping: NodeJS.Timeout | undefined;
    try {
      monitor.start();
      // A few probe rounds with every node in step: nothing to say.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(chat.calls).toEqual([]);
      const healthy = await monitor.status();
      expect(healthy.nodes.every((n) => n.condition === 'healthy')).toBe(true);
      expect(Math.abs((healthy.referenceHeight ?? 0) - (await chainHeight()))).toBeLessThanOrEqual(2);

      await s.node('cn1').stall();
      s.node('cn2').state.behind = 10;
      s.node('cn3').state.cnPeers = 0;
      s.node('cn1s').state.down = true;
      // cn4 alternates 4 s at 6 blocks behind and 4 s at 2 behind: raised once, never resolved.
      let phase = 0;
      s.node('cn4').state.behind = 6;
      flapping = setInterval(() => {
        phase++;
        s.node('cn4').state.behind = phase % 2 === 0 ? 6 : 2;
      }, 4_000);

      await waitFor('four alerts', () => parents().length >= 5);
      expect(parentOf('cn1')?.message.text).toContain('stalled');
      expect(parentOf('cn2')?.message.text).toContain('lagging');
      expect(JSON.stringify(parentOf('cn2')?.message.blocks)).toMatch(/\*Lag:\* (9|10|11) blocks/);
      expect(parentOf('cn3')?.message.text).toContain('isolated');
      expect(parentOf('cn1s')?.message.text).toContain('down');
      expect(JSON.stringify(parentOf('cn1s')?.message.blocks)).toContain('503');
      expect(parentOf('cn4')?.message.text).toContain('lagging');

      // Everything recovers except cn4, which keeps hovering.
      s.node('cn1').resume();
      s.node('cn2').state.behind = 0;
      s.node('cn3').state.cnPeers = 4;
      s.node('cn1s').state.down = false;
      for (const node of ['cn1', 'cn2', 'cn3', 'cn1s']) {
        await waitFor(`${node} recovered`, () => threadOf(node).some((t) => t.includes('Recovered after')));
        const resolved = chat
          .updates()
          .filter((u) => u.ref.ts === parentOf(node)?.ref.ts)
          .at(-1);
        expect(resolved?.message.text).toMatch(/^Resolved after \d+s/);
      }
      expect(threadOf('cn4').join('\n')).not.toContain('Recovered');
      expect(parents()).toHaveLength(5);
      const status = await monitor.status();
      expect(status.nodes.find((n) => n.node === 'cn4')?.condition).toBe('lagging');
      expect(status.nodes.find((n) => n.node === 'cn1')?.condition).toBe('healthy');
    } finally {
      clearInterval(flapping);
      await monitor.stop();
    }
  }, 90_000);
});
