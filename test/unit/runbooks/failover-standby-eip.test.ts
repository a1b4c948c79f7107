/**
 * A standby failover that moves an Elastic IP checks who holds it first, as the snapshot mode does
 * (eip-holder.ts): the serving machine's instance or nothing is expected; any other holder needs an
 * approver to confirm taking it, in so many words, before AssociateAddress.
 */
import { describe, expect, it } from 'vitest';
import type { CellopsConfig } from '../../../src/config/config.js';
import { failoverRunbook } from '../../../src/runbooks/failover.js';
import type { FailoverParams } from '../../../src/runbooks/failover-params.js';
import type { Cloud } from '../../../src/ports/cloud.js';
import { createSimCloud, type SimCloud } from '../../../src/sandbox/sim-cloud.js';
import { runSteps, type RunStepsOptions } from '../../support/run-steps.js';
import { CN1_ADDRESS, createStandbyCell } from '../../support/standby-cell.js';

const EIP = 'eipalloc-0123456789abcdef0';
const CN1_INSTANCE = 'i-0aaaaaaaaaaaaaaa1';
const CN1S_INSTANCE = 'i-0bbbbbbbbbbbbbbb2';
const FOREIGN = 'i-0ccccccccccccccc3';
const PARAMS: FailoverParams = { cn: 'cn1', force: false };

function withInstances(config: CellopsConfig): CellopsConfig {
  const { cn1, cn1s } = config.nodes;
  if (!cn1 || !cn1s) throw new Error('the standby cell has cn1 and cn1s');
  return {
    ...config,
    nodes: {
      ...config.nodes,
      cn1: { ...cn1, instanceId: CN1_INSTANCE },
      cn1s: { ...cn1s, instanceId: CN1S_INSTANCE },
    },
  };
}

/** cn1 failed, its Elastic IP on `holder` (undefined: on no instance). */
function setup(holder: string | undefined) {
  const cell = createStandbyCell({ ip: { method: 'eip', allocationId: EIP } });
  cell.sim.host('cn1').stopDaemon();
  const cloud: SimCloud = createSimCloud({
    clock: cell.clock,
    seed: {
      instances: [{ instanceId: CN1_INSTANCE }, { instanceId: CN1S_INSTANCE }, { instanceId: FOREIGN }],
      addresses: [
        {
          allocationId: EIP,
          publicIp: '203.0.113.9',
          ...(holder === undefined ? {} : { instanceId: holder }),
        },
      ],
    },
  });
  const config = withInstances(cell.config);
  const run = (options: Partial<RunStepsOptions<FailoverParams>> = {}) =>
    runSteps(failoverRunbook.steps(PARAMS, config), {
      params: PARAMS,
      config,
      ports: { ...cell.ports, cloud },
      runId: 'f1',
      ...options,
    });
  const holderNow = async () => (await cloud.describeAddress(EIP))?.instanceId;
  return { cell, cloud, config, run, holderNow };
}

describe('standby failover with an Elastic IP: who holds it', () => {
  it("moves it from the failed CN's instance without asking anyone to confirm", async () => {
    const { cell, run, holderNow } = setup(CN1_INSTANCE);
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.skipped).toContain('confirm-eip-holder');
    expect(result.approved).not.toContain('confirm-eip-holder');
    expect(await holderNow()).toBe(CN1S_INSTANCE);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1_ADDRESS);
  });

  it('moves it from no instance too', async () => {
    const { run, holderNow } = setup(undefined);
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.skipped).toContain('confirm-eip-holder');
    expect(await holderNow()).toBe(CN1S_INSTANCE);
  });

  it('needs an approver to confirm taking it from a foreign instance, and leaves it there without', async () => {
    const refused = setup(FOREIGN);
    const stopped = await refused.run({ approve: (step) => step.id !== 'confirm-eip-holder' });
    expect(stopped.status).toBe('aborted');
    expect(stopped.failedStep).toBe('confirm-eip-holder');
    expect(await refused.holderNow()).toBe(FOREIGN);
    const plan = stopped.descriptions.find((d) => d.stepId === 'confirm-eip-holder')?.text ?? '';
    expect(plan).toContain(
      `Only when Elastic IP ${EIP} is held by an instance other than cn1's (${CN1_INSTANCE})`,
    );
    expect(plan).toMatch(/Approve ONLY after you have checked, outside cellops/);

    const confirmed = setup(FOREIGN);
    const moved = await confirmed.run();
    expect(moved.error).toBeUndefined();
    expect(moved.approved).toContain('confirm-eip-holder');
    expect(await confirmed.holderNow()).toBe(CN1S_INSTANCE);
  });

  it('refuses to move it when another instance took it after the confirmation', async () => {
    const { cell, cloud, config, holderNow } = setup(FOREIGN);
    const other = 'i-0ddddddddddddddd4';
    // Between the confirmation and the move, EC2 starts reporting another holder.
    let taken = false;
    const moving: Cloud = Object.create(cloud) as Cloud;
    moving.describeAddress = async (id) => {
      const address = await cloud.describeAddress(id);
      return taken && address ? { ...address, instanceId: other } : address;
    };
    const result = await runSteps(failoverRunbook.steps(PARAMS, config), {
      params: PARAMS,
      config,
      ports: { ...cell.ports, cloud: moving },
      approve: (step) => {
        if (step.id === 'move-ip') taken = true;
        return true;
      },
    });
    expect(result.failedStep).toBe('move-ip');
    expect(String(result.error)).toMatch(/now held by i-0ddddddddddddddd4.*no approver confirmed taking it/);
    expect(await holderNow()).toBe(FOREIGN);
    expect(cell.sim.host('cn1s').loadedAddress()).not.toBe(CN1_ADDRESS);
  });

  it('a switchover refuses an Elastic IP held by a foreign instance in its preflight, before anything stops', async () => {
    const { cell, cloud, config, holderNow } = setup(FOREIGN);
    cell.sim.host('cn1').startDaemon();
    const params: FailoverParams = { cn: 'cn1', force: false, switchover: true };
    const commands = cell.sim.commands.length;
    const result = await runSteps(failoverRunbook.steps(params, config), {
      params,
      config,
      ports: { ...cell.ports, cloud },
    });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toContain(
      `held by ${FOREIGN}, which is neither cn1's instance ${CN1_INSTANCE} nor cn1s's`,
    );
    expect(await holderNow()).toBe(FOREIGN);
    expect(cell.sim.host('cn1').loadedAddress()).toBe(CN1_ADDRESS);
    expect(cell.sim.commands.slice(commands).filter((c) => /systemctl (stop|start)/.test(c.command))).toEqual(
      [],
    );
  });
});
