import { describe, expect, it } from 'vitest';
import { ExternalError, SafetyGateError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import type { RunbookPorts } from '../../../src/runbooks/types.js';
import { imageRunbook, imageSteps } from '../../../src/runbooks/image.js';
import { imageName } from '../../../src/runbooks/run-resources.js';
import { createSimCloud, type SimInstanceSeed } from '../../../src/sandbox/sim-cloud.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { IDS, snapshotConfig } from '../../support/snapshot-fixture.js';

const PARAMS = { cn: 'cn2' };

function setup(
  volumes: SimInstanceSeed['volumes'] = [
    { volumeId: IDS.cn2Root, device: '/dev/xvda' },
    { volumeId: IDS.cn2Data, device: '/dev/sdf' },
  ],
) {
  const clock = createJumpClock();
  const sim = createSimCloud({
    clock,
    seed: { instances: [{ instanceId: IDS.cn2, availabilityZone: 'sim-region-1a', volumes }] },
  });
  const state = createMemoryCellState();
  // The image runbook touches no host: a shell with no scripted replies fails any command it would run.
  const ports: RunbookPorts = { shell: new FakeShell(), cloud: sim, rpc: new FakeNodeRpc(), clock, state };
  return { clock, sim, state, ports, config: snapshotConfig() };
}

describe('image runbook', () => {
  it('images the CN without its DATA_DIR volume, without rebooting it, and records it as the latest', async () => {
    const { sim, state, ports, config, clock } = setup();
    const result = await runSteps(imageRunbook.steps(PARAMS, config), {
      params: PARAMS,
      config,
      ports,
      runId: 'run-9',
    });
    expect(result.error).toBeUndefined();
    const create = sim.calls.find((c) => c.op === 'createImage');
    expect(create?.args[0]).toMatchObject({
      instanceId: IDS.cn2,
      excludeDevices: ['/dev/sdf'],
      reboot: false,
      tags: { 'cellops:run-id': 'run-9', 'cellops:cell': 'test-cell', 'cellops:role': 'cn2' },
    });
    const image = sim.inventory().images[0];
    expect(image?.state).toBe('available');
    expect(image?.devices).toEqual(['/dev/xvda']);
    expect(await state.image('cn2')).toEqual({
      cn: 'cn2',
      imageId: image?.imageId,
      at: clock.now(),
      runId: 'run-9',
    });
    // Waited for `available` before recording: a pending image cannot launch a replacement.
    const ops = sim.calls.map((c) => c.op);
    expect(ops.indexOf('waitImageAvailable')).toBeLessThan(ops.lastIndexOf('describeImage'));
  });

  it('refuses when no volume sits at the data device, since DATA_DIR and the nodekey would go into the image', async () => {
    const { sim, ports, config } = setup([{ volumeId: IDS.cn2Root, device: '/dev/xvda' }]);
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.failedStep).toBe('preflight');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(/no volume at \/dev\/sdf .*nodekey, would go into the image/);
    expect(sim.calls.map((c) => c.op)).not.toContain('createImage');
  });

  it('refuses when the volume at the data device is not the configured DATA_DIR volume', async () => {
    const { ports, config } = setup([
      { volumeId: IDS.cn2Root, device: '/dev/xvda' },
      { volumeId: 'vol-0other', device: '/dev/sdf' },
      { volumeId: IDS.cn2Data, device: '/dev/sdg' },
    ]);
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/has vol-0other at \/dev\/sdf, not the configured DATA_DIR volume/);
  });

  it('images the instance that serves the CN now, after an earlier failover', async () => {
    const { sim, state, ports, config } = setup();
    await state.setRole({
      role: 'cn2',
      servedBy: 'i-0replaced',
      instanceId: 'i-0replaced',
      since: 1,
      runId: 'r',
    });
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    // The sim has no such instance: what matters is which one was asked for (and that it is refused).
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/instance i-0replaced, which EC2 does not know/);
    expect(sim.calls.find((c) => c.op === 'describeInstance')?.args[0]).toBe('i-0replaced');
  });

  it('lists the image it left when waiting for it fails, and records nothing', async () => {
    const { sim, state, ports, config } = setup();
    sim.failNext('waitImageAvailable', new ExternalError('ec2_wait_failed', 'image failed'));
    const result = await runSteps(imageSteps(), { params: PARAMS, config, ports, runId: 'run-9' });
    expect(result.failedStep).toBe('wait-available');
    const imageId = sim.inventory().images[0]?.imageId ?? '';
    expect((result.error as Error).message).toMatch(
      new RegExp(`^image failed\\nResources this run left \\(tagged cellops:run-id=run-9.*image ${imageId}`),
    );
    expect(await state.image('cn2')).toBeUndefined();
  });

  it('names CreateImage, NoReboot and the NoDevice mapping in its plan', () => {
    const config = snapshotConfig();
    const fact = () => undefined;
    const text = imageSteps()
      .map((s) => s.describe({ params: PARAMS, config, fact }))
      .join('\n');
    expect(text).toMatch(/EC2 CreateImage of i-00000000000000c02 with NoReboot .*\/dev\/sdf → NoDevice/);
    expect(imageSteps().some((s) => s.destructive)).toBe(false);
  });

  it('names images so that EC2 accepts them', () => {
    expect(imageName('my core cell!', 'cn2', Date.UTC(2026, 10, 26, 3, 4, 5))).toBe(
      'cellops-my-core-cell--cn2-20261126T030405Z',
    );
  });
});
