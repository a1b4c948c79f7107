import { describe, expect, it } from 'vitest';
import { ReadinessCheckError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { checkSteps } from '../../../src/runbooks/check.js';
import { nodeIdFromKey } from '../../../src/runbooks/nodekey.js';
import { createSimCloud } from '../../../src/sandbox/sim-cloud.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { createSnapshotCell } from '../../support/snapshot-cell.js';
import {
  CHAIN_HEIGHT,
  CN_KEY,
  IDS,
  REPLACEMENT_SEED,
  cellHostSeeds,
  recordBackup,
  snapshotConfig,
} from '../../support/snapshot-fixture.js';

const NODE_ID = nodeIdFromKey(CN_KEY);

async function check(staticNodes: string, failover: Record<string, unknown> = {}) {
  const clock = createJumpClock();
  const cloud = createSimCloud({
    clock,
    seed: {
      instances: [{ instanceId: IDS.cn2, privateIp: '10.0.2.11' }],
      addresses: [{ allocationId: IDS.eip, publicIp: '203.0.113.25', instanceId: IDS.cn2 }],
    },
  });
  const cell = createSnapshotCell({
    hosts: cellHostSeeds(),
    replacement: REPLACEMENT_SEED,
    chainHeight: () => CHAIN_HEIGHT,
    instanceAt: () => undefined,
    attachedVolume: () => undefined,
  });
  cell.host('pn1').files.set('/var/kpnd/data/klay/static-nodes.json', staticNodes);
  const state = createMemoryCellState();
  await recordBackup(state);
  const config = snapshotConfig(failover);
  const steps = checkSteps().filter((s) => s.id === 'pn-links');
  return runSteps(steps, {
    params: { cn: 'cn2' },
    config,
    ports: { shell: cell.shell, cloud, rpc: cell.rpc, clock, state },
  });
}

describe('readiness: how the PNs reach a snapshot-mode CN', () => {
  it("passes when the PNs dial the CN's Elastic IP, and says so", async () => {
    const result = await check(JSON.stringify([`kni://${NODE_ID}@203.0.113.25:32323?ntype=cn`]));
    expect(result.status).toBe('succeeded');
    expect(result.outputs.map((o) => o.line)).toContain(
      'the PNs dial cn2 at: pn1 → 203.0.113.25:32323; pn2 → not listed',
    );
  });

  it("fails when a PN dials the CN's primary private IP, which a replacement cannot take", async () => {
    const result = await check(JSON.stringify([`kni://${NODE_ID}@10.0.2.11:32323?ntype=cn`]));
    expect(result.error).toBeInstanceOf(ReadinessCheckError);
    expect(String(result.error)).toMatch(/pn1 dials cn2 at 10\.0\.2\.11:32323, which does not follow cn2/);
  });

  it('passes when that private IP is the configured secondary one that moves with the CN', async () => {
    const result = await check(JSON.stringify([`kni://${NODE_ID}@10.0.2.50:32323?ntype=cn`]), {
      privateIp: { address: '10.0.2.50/24' },
    });
    expect(result.status).toBe('succeeded');
  });
});
