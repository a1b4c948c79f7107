import { describe, expect, it } from 'vitest';
import type { CellopsConfig } from '../../../src/config/config.js';
import { ExternalError, HostError, SafetyGateError, StepTimeoutError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { RUN_ID_TAG, type Cloud } from '../../../src/ports/cloud.js';
import { describeHostKey, parseHostPublicKey } from '../../../src/ports/host-key.js';
import { SNAPSHOT_FACTS } from '../../../src/runbooks/failover-facts.js';
import type { FailoverParams } from '../../../src/runbooks/failover-params.js';
import { DEFAULT_SNAPSHOT_TIMINGS } from '../../../src/runbooks/failover-timings.js';
import { replacementHostKeyStep } from '../../../src/runbooks/replacement-host-key.js';
import { newHostKey } from '../../../src/sandbox/sim-cloud-console.js';
import { createSimCloud, type SimCloud } from '../../../src/sandbox/sim-cloud.js';
import { FakeShell, type RecordedExec } from '../../fakes/fake-shell.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { IDS, snapshotConfig } from '../../support/snapshot-fixture.js';

const PARAMS: FailoverParams = { cn: 'cn2', force: false };
const TIMINGS = { ...DEFAULT_SNAPSHOT_TIMINGS, consoleKeyMs: 60_000, sshReadyMs: 30_000 };
const CONSOLE_AFTER_MS = 20_000;

function fingerprint(line: string): string {
  const key = parseHostPublicKey(line);
  if (typeof key === 'string') throw new Error(key);
  return describeHostKey(key);
}

/** The fixture's configuration with cn2's launch.hostKeys set (the default when undefined). */
function withHostKeys(config: CellopsConfig, hostKeys: 'console' | 'known_hosts' | undefined): CellopsConfig {
  const cn2 = config.nodes.cn2;
  const launch = cn2?.failover?.launch;
  if (!cn2?.failover || !launch || hostKeys === undefined) return config;
  return {
    ...config,
    nodes: {
      ...config.nodes,
      cn2: { ...cn2, failover: { ...cn2.failover, launch: { ...launch, hostKeys } } },
    },
  };
}

/** Counts and optionally fails the console reads of the sim. */
function watched(sim: SimCloud, fail?: Error): Cloud & { consoleReads: number } {
  const cloud = Object.create(sim) as Cloud & { consoleReads: number };
  cloud.consoleReads = 0;
  cloud.consoleOutput = async (instanceId, options) => {
    cloud.consoleReads++;
    if (fail) throw fail;
    return sim.consoleOutput(instanceId, options);
  };
  return cloud;
}

async function setup(
  options: {
    hostKeys?: 'console' | 'known_hosts';
    /** What known_hosts lists for the replacement's address, given the key the instance has. */
    knownHosts?: (instanceKey: string) => readonly string[];
    presents?: (launched: string) => string;
    consoleFails?: Error;
    consoleKeysMs?: number;
  } = {},
) {
  const clock = createJumpClock();
  const sim = createSimCloud({
    clock,
    delays: { instanceStart: 5_000, consoleKeys: options.consoleKeysMs ?? CONSOLE_AFTER_MS },
    seed: { images: [{ imageId: IDS.image, name: 'cn2 image' }] },
  });
  const launched = await sim.runInstance({
    imageId: IDS.image,
    instanceType: 'm6i.2xlarge',
    subnetId: IDS.subnet,
    securityGroupIds: [IDS.sg],
    tags: { [RUN_ID_TAG]: 'run-1' },
  });
  const running = await sim.waitInstanceRunning(launched.instanceId, { timeoutMs: 60_000 });
  const instanceKey = sim.hostKeysOf(launched.instanceId)[0] ?? '';
  const presented = options.presents?.(instanceKey) ?? instanceKey;
  const knownHosts = options.knownHosts?.(instanceKey) ?? [];
  // The replacement answers SSH only to a client that accepts the key it presents, as ssh2 would.
  const shell = new FakeShell();
  shell.on('true', (exec: RecordedExec) => {
    const pins = exec.host.hostKeys;
    if (pins === undefined && !knownHosts.includes(presented))
      throw new HostError('host_key_unknown', `${exec.host.address} is not in known_hosts`);
    if (pins !== undefined && !pins.includes(presented))
      throw new HostError('host_key_mismatch', `${exec.host.address} presented ${fingerprint(presented)}`);
    return {};
  });
  Object.assign(shell, {
    knownHostKeys: async (address: string) => (address === running.privateIp ? knownHosts : []),
  });
  const cloud = watched(sim, options.consoleFails);
  const config = withHostKeys(snapshotConfig(), options.hostKeys);
  const ports = { shell, cloud, rpc: new FakeNodeRpc(), clock, state: createMemoryCellState() };
  const facts = {
    [SNAPSHOT_FACTS.instanceId]: launched.instanceId,
    [SNAPSHOT_FACTS.privateIp]: running.privateIp ?? '',
  };
  const run = (extraFacts: Record<string, string | string[]> = {}) =>
    runSteps([replacementHostKeyStep(TIMINGS)], {
      params: PARAMS,
      config,
      ports,
      facts: { ...facts, ...extraFacts },
    });
  return { clock, sim, shell, cloud, instanceKey, address: running.privateIp ?? '', run };
}

describe("learning the replacement's SSH host key", () => {
  it('waits through the empty console of a booting instance, pins exactly the printed key, and only then runs a command there', async () => {
    const { shell, cloud, instanceKey, run } = await setup();
    const result = await run();

    expect(result.error).toBeUndefined();
    expect(result.facts[SNAPSHOT_FACTS.hostKeys]).toEqual([instanceKey]);
    expect(result.facts[SNAPSHOT_FACTS.hostKeySource]).toBe('console');
    // Several reads: the console is empty for its first seconds, then shows the block.
    expect(cloud.consoleReads).toBeGreaterThan(2);
    expect(shell.executed.length).toBeGreaterThan(0);
    for (const exec of shell.executed) expect(exec.host.hostKeys).toEqual([instanceKey]);
    expect(result.outputs.map((o) => o.line).join('\n')).toContain(fingerprint(instanceKey));
  });

  it('backs off between console reads, doubling up to the poll interval', async () => {
    const { cloud, run } = await setup({ consoleKeysMs: 60_000 - 5_000 });
    const result = await run();
    expect(result.error).toBeUndefined();
    // 1 + 2 + 4 + then 5 s pauses up to ~55 s after boot: far fewer reads than one a second.
    expect(cloud.consoleReads).toBeLessThan(16);
    expect(cloud.consoleReads).toBeGreaterThan(10);
  });

  it('keeps the pin a resumed run recorded and does not read the console again', async () => {
    const { shell, cloud, run, instanceKey } = await setup();
    const result = await run({ [SNAPSHOT_FACTS.hostKeys]: [instanceKey] });
    expect(result.error).toBeUndefined();
    expect(cloud.consoleReads).toBe(0);
    expect(shell.executed.every((e) => e.host.hostKeys?.[0] === instanceKey)).toBe(true);
  });

  it('refuses a host that presents another key than its console printed, naming both fingerprints, before any command ran', async () => {
    const impostor = newHostKey();
    const { shell, run, instanceKey } = await setup({ presents: () => impostor });
    const result = await run();

    expect(result.status).toBe('failed');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    const message = (result.error as Error).message;
    expect(message).toContain(fingerprint(impostor));
    expect(message).toMatch(/nothing was run there/);
    // The one attempt was refused at the handshake: no command got through.
    expect(shell.executed).toHaveLength(1);
    expect(result.facts[SNAPSHOT_FACTS.hostKeys]).toEqual([instanceKey]);
  });

  it('uses a known_hosts entry for the address instead of the console when there is one', async () => {
    const known = await setup({ knownHosts: (instanceKey) => [instanceKey] });
    const result = await known.run();
    expect(result.error).toBeUndefined();
    expect(known.cloud.consoleReads).toBe(0);
    expect(result.facts[SNAPSHOT_FACTS.hostKeySource]).toBe('known_hosts');
    expect(result.facts[SNAPSHOT_FACTS.hostKeys]).toBeUndefined();
    expect(known.shell.executed.length).toBeGreaterThan(0);
    expect(known.shell.executed.every((e) => e.host.hostKeys === undefined)).toBe(true);
  });

  it('with hostKeys: known_hosts, stops without an entry for the address and never reads the console', async () => {
    const { cloud, shell, run } = await setup({ hostKeys: 'known_hosts' });
    const result = await run();
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect((result.error as Error).message).toMatch(
      /known_hosts has no entry for .*launch\.hostKeys is known_hosts/,
    );
    expect(cloud.consoleReads).toBe(0);
    expect(shell.executed).toHaveLength(0);
  });

  it('gives up after consoleKeyMs when no block appears, saying what to check', async () => {
    const { shell, run } = await setup({ consoleKeysMs: 10 * 60_000 });
    const result = await run();
    expect(result.error).toBeInstanceOf(StepTimeoutError);
    expect((result.error as Error).message).toMatch(
      /no SSH host key block on the console of i-.* after 60 s/,
    );
    expect(shell.executed).toHaveLength(0);
  });

  it('says which permission is missing when GetConsoleOutput is refused', async () => {
    const denied = new ExternalError(
      'ec2_unauthorized',
      'EC2 refused GetConsoleOutput (UnauthorizedOperation).',
    );
    const { shell, run } = await setup({ consoleFails: denied });
    const result = await run();
    expect((result.error as Error).message).toMatch(
      /allow ec2:GetConsoleOutput .* or set nodes\.cn2\.failover\.launch\.hostKeys: known_hosts/,
    );
    expect(shell.executed).toHaveLength(0);
  });
});
