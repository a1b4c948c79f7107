import { describe, expect, it } from 'vitest';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { cleanupRunbook, type CleanupParams } from '../../../src/runbooks/cleanup.js';
import { createSimCloud } from '../../../src/sandbox/sim-cloud.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { snapshotConfig } from '../../support/snapshot-fixture.js';
import type { RunbookPorts } from '../../../src/runbooks/types.js';

const RUN = 'run-7';
const TAGS = { 'cellops:run-id': RUN, 'cellops:cell': 'test-cell', Name: 'cn2-x' };

async function setup() {
  const clock = createJumpClock();
  const cloud = createSimCloud({
    clock,
    seed: {
      instances: [
        { instanceId: 'i-0cn2', volumes: [{ volumeId: 'vol-0cn2data', device: '/dev/sdf' }] },
        { instanceId: 'i-0other', tags: { 'cellops:run-id': 'run-other' } },
      ],
      images: [{ imageId: 'ami-0cn2', name: 'cn2' }],
    },
  });
  // What a failed snapshot run left: a replacement, its restored volume and the chaindata snapshot.
  const replacement = await cloud.runInstance({
    imageId: 'ami-0cn2',
    instanceType: 'm6i.large',
    subnetId: 'subnet-1',
    securityGroupIds: ['sg-1'],
    tags: TAGS,
  });
  const { snapshotId } = await cloud.createSnapshot('vol-0cn2data', 'chaindata', TAGS);
  await clock.sleep(60_000);
  const { volumeId } = await cloud.createVolume(snapshotId, replacement.availabilityZone, TAGS);
  await clock.sleep(60_000);
  await cloud.attachVolume(volumeId, replacement.instanceId, '/dev/sdf');
  await clock.sleep(60_000);
  const state = createMemoryCellState();
  const ports = { cloud, clock, state } as unknown as RunbookPorts;
  const params: CleanupParams = { runId: RUN, cn: 'cn2' };
  return { cloud, state, ports, params, replacement, snapshotId, volumeId };
}

describe('cleanup of a run', () => {
  it("terminates the run's instance and deletes its volumes and snapshot, after an approval", async () => {
    const s = await setup();
    const result = await runSteps(cleanupRunbook.steps(s.params, snapshotConfig()), {
      params: s.params,
      config: snapshotConfig(),
      ports: s.ports,
    });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.approved).toEqual(['remove']);
    const inv = s.cloud.inventory();
    expect(inv.instances.find((i) => i.instanceId === s.replacement.instanceId)?.state).toBe('terminated');
    expect(inv.volumes.map((v) => v.volumeId)).not.toContain(s.volumeId);
    expect(inv.snapshots).toEqual([]);
    // Nothing without the run's tag is touched.
    expect(inv.instances.find((i) => i.instanceId === 'i-0cn2')?.state).toBe('running');
    expect(inv.instances.find((i) => i.instanceId === 'i-0other')?.state).toBe('running');
    expect(inv.volumes.map((v) => v.volumeId)).toContain('vol-0cn2data');
  });

  it('removes nothing when the approver declines', async () => {
    const s = await setup();
    const result = await runSteps(cleanupRunbook.steps(s.params, snapshotConfig()), {
      params: s.params,
      config: snapshotConfig(),
      ports: s.ports,
      approve: () => false,
    });
    expect(result.status).toBe('aborted');
    expect(s.cloud.calls.map((c) => c.op)).not.toContain('terminateInstance');
    expect(s.cloud.inventory().snapshots).toHaveLength(1);
  });

  it('never removes the instance that serves the CN now, nor its volume', async () => {
    const s = await setup();
    await s.state.setRole({
      role: 'cn2',
      servedBy: s.replacement.instanceId,
      instanceId: s.replacement.instanceId,
      since: 1,
      runId: RUN,
    });
    const result = await runSteps(cleanupRunbook.steps(s.params, snapshotConfig()), {
      params: s.params,
      config: snapshotConfig(),
      ports: s.ports,
    });
    expect(result.status).toBe('succeeded');
    const inv = s.cloud.inventory();
    expect(inv.instances.find((i) => i.instanceId === s.replacement.instanceId)?.state).toBe('running');
    expect(inv.volumes.map((v) => v.volumeId)).toContain(s.volumeId);
    expect(inv.snapshots).toEqual([]);
    expect(result.outputs.map((o) => o.line).join('\n')).toMatch(/kept: .*it serves cn2 now/);
  });
});
