import { describe, expect, it } from 'vitest';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { createFencedWatch } from '../../../src/monitor/fenced-watch.js';
import { createSimCloud } from '../../../src/sandbox/sim-cloud.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { createJumpClock } from '../../support/run-steps.js';
import { snapshotConfig } from '../../support/snapshot-fixture.js';

const CN_ADDRESS = '0x2c7536e3605d9c16a7a3d7b1898e529396a65c23';
const OLD = 'i-00000000000000c02';
const THREAD = { channel: 'C0RUNS', ts: '1700000000.000100' };

async function setup() {
  const clock = createJumpClock();
  const config = snapshotConfig();
  const cloud = createSimCloud({ clock, seed: { instances: [{ instanceId: OLD, state: 'stopped' }] } });
  const state = createMemoryCellState();
  await state.setRole({
    role: 'cn2',
    servedBy: 'i-0new',
    instanceId: 'i-0new',
    address: '10.0.2.77',
    since: 1,
    runId: 'run-7',
    fenced: { name: 'cn2', address: '10.0.2.11', instanceId: OLD, nodeAddress: CN_ADDRESS },
  });
  const rpc = new FakeNodeRpc();
  const shell = new FakeShell();
  // The old host is down: SSH does not answer.
  shell.on('', new Error('connect ETIMEDOUT 10.0.2.11:22'));
  const chat = new FakeChat();
  const watch = createFencedWatch({
    config,
    state,
    rpc,
    chat,
    clock,
    logger: new RecordingLogger(),
    cloud,
    shell,
    runThread: async (runId) => (runId === 'run-7' ? THREAD : undefined),
  });
  const posts = () =>
    chat.calls.flatMap((c) =>
      c.kind === 'post' ? [{ thread: c.message.threadTs, text: c.message.text }] : [],
    );
  return { watch, cloud, rpc, shell, chat, posts };
}

describe('the watch of a fenced machine', () => {
  it('says nothing while the old machine stays down', async () => {
    const s = await setup();
    expect(await s.watch.check()).toEqual([]);
    expect(s.posts()).toEqual([]);
  });

  it('alerts in the channel and the run thread, once, when the stopped instance is started again', async () => {
    const s = await setup();
    s.cloud.setInstanceState(OLD, 'running');
    await s.watch.check();
    await s.watch.check();
    const posts = s.posts();
    expect(posts).toHaveLength(2);
    expect(posts.map((p) => p.thread)).toEqual([undefined, THREAD.ts]);
    expect(posts[0]?.text).toContain(`the fenced instance ${OLD} of cn2 (cn2) is running again`);
  });

  it("alerts when the CN's node address answers from the old machine, and when kcnd runs there again", async () => {
    const s = await setup();
    s.rpc.addresses.set('cn2', CN_ADDRESS);
    s.shell.on('systemctl is-active kcnd', { stdout: 'active\n' });
    const findings = await s.watch.check();
    expect(findings.map((f) => f.key).sort()).toEqual(['cn2:address@10.0.2.11', 'cn2:daemon']);
    expect(
      s
        .posts()
        .map((p) => p.text)
        .join('\n'),
    ).toMatch(/answers from cn2 \(10\.0\.2\.11\)/);
  });

  it('posts again only after a finding cleared and came back', async () => {
    const s = await setup();
    s.cloud.setInstanceState(OLD, 'running');
    await s.watch.check();
    s.cloud.setInstanceState(OLD, 'stopped');
    await s.watch.check();
    s.cloud.setInstanceState(OLD, 'running');
    await s.watch.check();
    expect(s.posts()).toHaveLength(4);
  });
});
