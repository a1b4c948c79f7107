import { describe, expect, it } from 'vitest';
import type { CellopsConfig } from '../../../src/config/config.js';
import { ExternalError, ReadinessCheckError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import type { Cloud } from '../../../src/ports/cloud.js';
import { replacementHostKeyCondition } from '../../../src/runbooks/check-host-keys.js';
import { createSimCloud } from '../../../src/sandbox/sim-cloud.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { IDS, snapshotConfig } from '../../support/snapshot-fixture.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRq7Dl1Qc5mB9Yh8Qd3qH3m6wq0y1JQhW0mV8pT3rRk';

function configWith(hostKeys: 'console' | 'known_hosts'): CellopsConfig {
  const config = snapshotConfig();
  const cn2 = config.nodes.cn2!;
  const failover = cn2.failover!;
  return {
    ...config,
    nodes: {
      ...config.nodes,
      cn2: { ...cn2, failover: { ...failover, launch: { ...failover.launch!, hostKeys } } },
    },
  };
}

function check(
  hostKeys: 'console' | 'known_hosts',
  options: { known?: string[]; consoleFails?: Error } = {},
) {
  const clock = createJumpClock();
  const sim = createSimCloud({
    clock,
    seed: { instances: [{ instanceId: IDS.cn2, privateIp: '10.0.2.11' }] },
  });
  const cloud: Cloud = Object.create(sim) as Cloud;
  cloud.consoleOutput = async (id, o) => {
    if (options.consoleFails) throw options.consoleFails;
    return sim.consoleOutput(id, o);
  };
  const shell = Object.assign(new FakeShell(), {
    knownHostKeys: async (address: string) => (address === '10.0.2.11' ? (options.known ?? []) : []),
  });
  return runSteps([replacementHostKeyCondition], {
    params: { cn: 'cn2' },
    config: configWith(hostKeys),
    ports: { shell, cloud, rpc: new FakeNodeRpc(), clock, state: createMemoryCellState() },
    undoOnFailure: false,
  });
}

describe("check: the replacement's host key", () => {
  it('console: passes when EC2 answers GetConsoleOutput for the CN, and says so', async () => {
    const result = await check('console');
    expect(result.error).toBeUndefined();
    expect(result.outputs.map((o) => o.line).join('\n')).toContain(`GetConsoleOutput answers for ${IDS.cn2}`);
    expect(result.descriptions[0]?.text).toMatch(/hostKeys: console/);
  });

  it('console: fails with the permission to grant when GetConsoleOutput is refused', async () => {
    const result = await check('console', {
      consoleFails: new ExternalError('ec2_unauthorized', 'UnauthorizedOperation'),
    });
    expect(result.error).toBeInstanceOf(ReadinessCheckError);
    expect(String(result.error)).toMatch(
      /Allow ec2:GetConsoleOutput, or set nodes\.cn2\.failover\.launch\.hostKeys: known_hosts/,
    );
  });

  it('known_hosts: fails without an entry matching the CN address, passes with one', async () => {
    const missing = await check('known_hosts');
    expect(missing.error).toBeInstanceOf(ReadinessCheckError);
    expect(String(missing.error)).toMatch(/no entry matching 10\.0\.2\.11.*10\.0\.2\.\*/);
    const present = await check('known_hosts', { known: [KEY] });
    expect(present.error).toBeUndefined();
  });
});
