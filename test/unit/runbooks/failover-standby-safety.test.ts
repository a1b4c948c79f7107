/**
 * The standby failover against the ways a real cell defeats a naive fence: kcn restarted outside systemd,
 * sudo refusing, an EC2 stop that fails, an old active that comes back, a wrong backup, a VIP that cannot
 * be removed, a standby that started although its start "failed", and crash-resume verifies.
 */
import { describe, expect, it } from 'vitest';
import { standbyFailoverSteps } from '../../../src/runbooks/failover-standby.js';
import { STANDBY_FACTS } from '../../../src/runbooks/failover-facts.js';
import type { FailoverParams } from '../../../src/runbooks/failover-params.js';
import type { Fact, RunbookPorts, StepContext, StepDefinition } from '../../../src/runbooks/types.js';
import type { Shell } from '../../../src/ports/shell.js';
import type { ShellCommand } from '../../../src/ports/shell-command.js';
import type { NodeRpc } from '../../../src/ports/node-rpc.js';
import type { Cloud } from '../../../src/ports/cloud.js';
import type { CellopsConfig } from '../../../src/config/config.js';
import { ExternalError, SafetyGateError } from '../../../src/errors.js';
import { nodeAddressFromKey } from '../../../src/runbooks/nodekey.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import {
  CN1_ADDRESS,
  CN1_KEY,
  CN1S_ADDRESS,
  CN1S_KEY,
  DATA_DIR,
  VIP,
  createStandbyCell,
  runStandbyFailover,
  type StandbyCell,
} from '../../support/standby-cell.js';

const params: FailoverParams = { cn: 'cn1', force: false };
const KEY_PATH = `${DATA_DIR}/klay/nodekey`;
const OTHER_KEY = '8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f';
const SUDO_REFUSED = 'sudo: a password is required';

function step(id: string): StepDefinition<FailoverParams> {
  const found = standbyFailoverSteps().find((s) => s.id === id);
  if (!found) throw new Error(`no step ${id}`);
  return found;
}

/** A step context as the engine gives one after a crash: the facts that were saved, nothing else. */
function contextFor(cell: StandbyCell, facts: Record<string, Fact>): StepContext<FailoverParams> {
  return {
    params,
    config: cell.config,
    ports: cell.ports,
    runId: 'r1',
    signal: new AbortController().signal,
    log: new RecordingLogger(),
    fact: <T extends Fact>(key: string) => facts[key] as T | undefined,
    setFact: (key, value) => {
      facts[key] = value;
    },
    output: () => undefined,
    resumed: true,
  };
}

function result(exitCode: number, stdout = '') {
  return { exitCode, stdout, stderr: '', truncated: false, durationMs: 0 };
}

/**
 * cn1 is wedged: kcn runs (kcnd's AUTO_RESTART restarted it through the init script, so systemd lost track
 * of it) but answers neither metrics nor RPC. `systemctl is-active` says inactive and `systemctl stop`
 * does nothing, as on a real host in that state.
 */
function wedgedOutsideSystemd(cell: StandbyCell): RunbookPorts {
  const inner = cell.ports.shell;
  const shell: Shell = {
    async exec(host, command: ShellCommand, options) {
      if (host.name === 'cn1' && /systemctl is-active kcnd$/.test(command)) return result(3, 'inactive\n');
      if (host.name === 'cn1' && /systemctl stop kcnd$/.test(command)) return result(0);
      return inner.exec(host, command, options);
    },
    close: () => inner.close(),
  };
  const hung = () => Promise.reject(new ExternalError('rpc_unreachable', 'cn1: timed out (simulated)'));
  const rpc: NodeRpc = {
    health: (endpoint, options) =>
      endpoint.name === 'cn1' ? hung() : cell.ports.rpc.health(endpoint, options),
    nodeAddress: (endpoint, options) =>
      endpoint.name === 'cn1' ? hung() : cell.ports.rpc.nodeAddress(endpoint, options),
    recentBlocks: (endpoint, count, options) => cell.ports.rpc.recentBlocks(endpoint, count, options),
  };
  return { ...cell.ports, shell, rpc };
}

function withCn1Instance(
  cell: StandbyCell,
  cloud: Partial<Cloud>,
): { config: CellopsConfig; ports: RunbookPorts } {
  const cn1 = cell.config.nodes.cn1;
  if (!cn1) throw new Error('no cn1');
  const config: CellopsConfig = {
    ...cell.config,
    nodes: { ...cell.config.nodes, cn1: { ...cn1, instanceId: 'i-0cn1' } },
  };
  return { config, ports: { ...cell.ports, cloud: { ...cell.ports.cloud, ...cloud } } };
}

describe('fencing the old active', () => {
  it('stops at the fence when kcn survives systemctl stop outside systemd, and never starts the standby', async () => {
    const cell = createStandbyCell();
    const result = await runStandbyFailover(cell, { ports: wedgedOutsideSystemd(cell) });

    expect(result.failedStep).toBe('fence-old-active');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(/a kcn process still runs on cn1 after stop.*AUTO_RESTART/);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
    expect(cell.sim.violations).toEqual([]);
  });

  it('fails the fence when sudo refuses to look for the key, instead of leaving the key in place', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    cell.sim.host('cn1').faults.push({
      match: new RegExp(`test -e ${KEY_PATH}$`),
      exitCode: 1,
      stderr: SUDO_REFUSED,
      once: false,
    });
    const result = await runStandbyFailover(cell);

    expect(result.failedStep).toBe('fence-old-active');
    expect(String(result.error)).toContain(SUDO_REFUSED);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });

  it("asks an approver when the old active's EC2 instance cannot be stopped, although SSH fencing worked", async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const { config, ports } = withCn1Instance(cell, {
      describeInstance: async (instanceId) => ({
        instanceId,
        state: 'running',
        availabilityZone: 'sim-a',
        tags: {},
      }),
      stopInstance: async () => {
        throw new ExternalError('ec2_unauthorized', 'not authorized to stop i-0cn1 (simulated)');
      },
    });
    const result = await runStandbyFailover(cell, {
      config,
      ports,
      approve: (s) => s.id !== 'confirm-old-active-off',
    });

    expect(result.facts[STANDBY_FACTS.fenceSsh]).toBe('done');
    expect(result.facts[STANDBY_FACTS.fenceEc2]).toBe('failed');
    expect(result.status).toBe('aborted');
    expect(result.failedStep).toBe('confirm-old-active-off');
    expect(result.descriptions.find((d) => d.stepId === 'confirm-old-active-off')?.text).toMatch(
      /could NOT be stopped/,
    );
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });

  it('does not take a fence as done after a crash while the instance it was to stop still runs', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    cell.sim.host('cn1').files.delete(KEY_PATH);
    const { config, ports } = withCn1Instance(cell, {
      describeInstance: async (instanceId) => ({
        instanceId,
        state: 'running',
        availabilityZone: 'a',
        tags: {},
      }),
    });
    const ctx = { ...contextFor(cell, {}), config, ports };
    expect(await step('fence-old-active').verify?.(ctx)).toBe(false);
  });

  it('refuses to start the standby when an old active confirmed off is reachable again with its key', async () => {
    const cell = createStandbyCell();
    const cn1 = cell.sim.host('cn1');
    cn1.stopDaemon();
    cn1.reachable = false;
    const result = await runStandbyFailover(cell, {
      approve: (s) => {
        // Someone powers cn1 back on between the confirmation and the start: its key is where kcnd loads it.
        if (s.id === 'start-standby') cn1.reachable = true;
        return true;
      },
    });

    expect(result.ran).toContain('confirm-old-active-off');
    expect(result.failedStep).toBe('start-standby');
    expect(String(result.error)).toMatch(/nodekey is back at \/var\/kcnd\/data\/klay\/nodekey on cn1/);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
    expect(cell.sim.violations).toEqual([]);
  });

  it('refuses to start the standby when the stopped instance of the old active runs again', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    let state: 'stopped' | 'running' = 'stopped';
    const { config, ports } = withCn1Instance(cell, {
      describeInstance: async (instanceId) => ({ instanceId, state, availabilityZone: 'a', tags: {} }),
      stopInstance: async () => undefined,
      waitInstanceStopped: async () => undefined,
    });
    const result = await runStandbyFailover(cell, {
      config,
      ports,
      approve: (s) => {
        if (s.id === 'start-standby') state = 'running';
        return true;
      },
    });

    expect(result.failedStep).toBe('start-standby');
    expect(String(result.error)).toMatch(/i-0cn1 is running again/);
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });
});

describe('preflight', () => {
  it('records nothing from a preflight that did not pass, so an interrupted one is not taken as done', async () => {
    const cell = createStandbyCell({ files: { cn1s: { [`${DATA_DIR}/nodekey`]: CN1S_KEY } } });
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell);
    expect(result.failedStep).toBe('preflight');
    expect(result.facts[STANDBY_FACTS.failedAddress]).toBeUndefined();
    expect(await step('preflight').verify?.(contextFor(cell, { ...result.facts }))).toBe(false);
  });

  it('refuses a backup that is not the key file of a failed CN that can still be reached', async () => {
    const cell = createStandbyCell({ backup: OTHER_KEY });
    cell.sim.host('cn1').stopDaemon();
    const result = await runStandbyFailover(cell);
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toContain(
      `holds address ${nodeAddressFromKey(OTHER_KEY)}, but cn1:${KEY_PATH} (the key its kcnd loads) holds ${CN1_ADDRESS}`,
    );
    expect(result.text()).not.toContain(OTHER_KEY);
  });

  it('refuses a backup that another node of the cell is running right now', async () => {
    const cell = createStandbyCell({ backup: OTHER_KEY });
    cell.sim.host('cn1').stopDaemon();
    cell.sim.host('cn1').reachable = false;
    const cn1 = cell.config.nodes.cn1;
    if (!cn1) throw new Error('no cn1');
    const cn2 = {
      ...cn1,
      name: 'cn2',
      host: { name: 'cn2', address: '10.0.2.11' },
      endpoint: { ...cn1.endpoint, name: 'cn2', host: { name: 'cn2', address: '10.0.2.11' } },
    };
    const config: CellopsConfig = { ...cell.config, nodes: { ...cell.config.nodes, cn2 } };
    const rpc: NodeRpc = {
      ...cell.ports.rpc,
      nodeAddress: async (endpoint, options) =>
        endpoint.name === 'cn2'
          ? nodeAddressFromKey(OTHER_KEY)
          : cell.ports.rpc.nodeAddress(endpoint, options),
    };
    const result = await runStandbyFailover(cell, { config, ports: { ...cell.ports, rpc } });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/which cn2 runs right now/);
  });
});

describe('moving the IP', () => {
  it('never leaves the VIP on two hosts when the reachable old active refuses to drop it', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    cell.sim.host('cn1').faults.push({
      match: /ip addr del/,
      exitCode: 2,
      stderr: 'RTNETLINK answers: Operation not permitted',
    });
    const result = await runStandbyFailover(cell);

    expect(result.failedStep).toBe('move-ip');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(cell.sim.host('cn1s').devices.get('eth0')?.has(VIP)).toBe(false);
    expect(cell.sim.host('cn1').devices.get('eth0')?.has(VIP)).toBe(true);
    // The undos put the standby back as itself.
    expect(cell.sim.host('cn1s').loadedAddress()).toBe(CN1S_ADDRESS);
  });

  it('does not take the move as done after a crash between the add and the del', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1s').devices.get('eth0')?.add(VIP);
    expect(await step('move-ip').verify?.(contextFor(cell, {}))).toBe(false);
    cell.sim.host('cn1').devices.get('eth0')?.delete(VIP);
    expect(await step('move-ip').verify?.(contextFor(cell, {}))).toBe(true);
  });
});

describe('undo and resume', () => {
  it('stops a standby whose start "failed" although kcn started, before giving it its own key back', async () => {
    const cell = createStandbyCell();
    cell.sim.host('cn1').stopDaemon();
    const inner = cell.ports.shell;
    const shell: Shell = {
      async exec(host, command, options) {
        const outcome = await inner.exec(host, command, options);
        // kcn starts, but the command reports a failure (say the init script timed out waiting for it).
        if (
          host.name === 'cn1s' &&
          /systemctl start kcnd$/.test(command) &&
          cell.sim.host('cn1s').read(KEY_PATH) === CN1_KEY
        )
          return { ...outcome, exitCode: 1, stderr: 'Job for kcnd.service failed (simulated)' };
        return outcome;
      },
      close: () => inner.close(),
    };
    const result = await runStandbyFailover(cell, { ports: { ...cell.ports, shell } });

    expect(result.failedStep).toBe('start-standby');
    expect(result.undoErrors).toEqual([]);
    const cn1s = cell.sim.host('cn1s');
    expect(cn1s.read(KEY_PATH)).toBe(CN1S_KEY);
    expect(cn1s.loadedAddress()).toBe(CN1S_ADDRESS);
  });

  it('runs Verify again in full after a crash instead of trusting the address alone', async () => {
    const cell = createStandbyCell();
    const cn1s = cell.sim.host('cn1s');
    cell.sim.host('cn1').stopDaemon();
    cn1s.stopDaemon();
    cn1s.write(KEY_PATH, CN1_KEY, 0o600);
    cn1s.files.delete(`${DATA_DIR}/klay/bls-nodekey`);
    cn1s.startDaemon();
    expect(cn1s.loadedAddress()).toBe(CN1_ADDRESS);
    const verify = step('verify');
    expect(await verify.verify?.(contextFor(cell, { failedAddress: CN1_ADDRESS }))).toBe(false);
    const facts: Record<string, Fact> = { failedAddress: CN1_ADDRESS };
    await verify.run(contextFor(cell, facts));
    expect(await verify.verify?.(contextFor(cell, facts))).toBe(true);
  });
});
