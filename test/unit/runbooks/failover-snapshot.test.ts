import { describe, expect, it } from 'vitest';
import { ExternalError, SafetyGateError } from '../../../src/errors.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import type { Cloud } from '../../../src/ports/cloud.js';
import type { NodeRpc } from '../../../src/ports/node-rpc.js';
import type { HostRef, Shell } from '../../../src/ports/shell.js';
import { checkSteps } from '../../../src/runbooks/check.js';
import { imageSteps } from '../../../src/runbooks/image.js';
import { snapshotFailoverSteps } from '../../../src/runbooks/failover-snapshot.js';
import type { FailoverParams } from '../../../src/runbooks/failover-params.js';
import { createSimCloud, type SimCloud } from '../../../src/sandbox/sim-cloud.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { createSnapshotCell, testKey } from '../../support/snapshot-cell.js';
import {
  CHAIN_HEIGHT,
  CN_ADDRESS,
  CN_KEY,
  IDS,
  PN1_KEY,
  PN_VOLUME_FILES,
  REPLACEMENT_SEED,
  cellHostSeeds,
  recordBackup,
  snapshotConfig,
} from '../../support/snapshot-fixture.js';

const PARAMS: FailoverParams = { cn: 'cn2', force: false };
const SIM_SNAPSHOT_MS = 30_000;

/** Records every port call into `events` as `cloud:<op>`, next to the shell's `ssh <host>: …` lines. */
function logged(cloud: SimCloud, events: string[]): Cloud {
  return new Proxy(cloud, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        events.push(`cloud:${String(prop)}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function setup(
  options: {
    volumeFiles?: Readonly<Record<string, string>>;
    recordImage?: boolean;
    /** The instance the Elastic IP is on at the start. Default cn2's. */
    eipHolder?: string;
    failover?: Record<string, unknown>;
  } = {},
) {
  const clock = createJumpClock();
  const events: string[] = [];
  const sim = createSimCloud({
    clock,
    region: 'sim-region-1',
    delays: { snapshot: SIM_SNAPSHOT_MS },
    seed: {
      instances: [
        {
          instanceId: IDS.cn2,
          availabilityZone: 'sim-region-1a',
          privateIp: '10.0.2.11',
          secondaryIps: ['10.0.2.50'],
          volumes: [
            { volumeId: IDS.cn2Root, device: '/dev/xvda' },
            { volumeId: IDS.cn2Data, device: '/dev/sdf' },
          ],
        },
        { instanceId: 'i-0f0e1g2n' },
        {
          instanceId: IDS.pn1,
          availabilityZone: 'sim-region-1a',
          privateIp: '10.0.3.11',
          volumes: [{ volumeId: IDS.pn1Data, device: '/dev/sdf' }],
        },
      ],
      addresses: [
        { allocationId: IDS.eip, publicIp: '203.0.113.25', instanceId: options.eipHolder ?? IDS.cn2 },
      ],
      images: [{ imageId: IDS.image, name: 'cn2 image' }],
      subnets: { [IDS.subnet]: 'sim-region-1c' },
    },
  });
  const volumeFiles = options.volumeFiles ?? PN_VOLUME_FILES;
  const cell = createSnapshotCell({
    hosts: cellHostSeeds(),
    events,
    replacement: REPLACEMENT_SEED,
    chainHeight: () => CHAIN_HEIGHT,
    instanceAt: (address) =>
      sim.inventory().instances.find((i) => i.privateIp === address && i.state === 'running')?.instanceId,
    instanceRunning: (id) => sim.inventory().instances.find((i) => i.instanceId === id)?.state === 'running',
    attachedVolume: (instanceId, volumeId) => {
      const inventory = sim.inventory();
      const volume = inventory.volumes.find((v) => v.volumeId === volumeId);
      if (volume?.state !== 'in-use' || volume.attachment?.instanceId !== instanceId) return undefined;
      const snapshot = inventory.snapshots.find((s) => s.snapshotId === volume.snapshotId);
      return snapshot?.volumeId === IDS.pn1Data ? volumeFiles : undefined;
    },
  });
  const state = createMemoryCellState();
  await recordBackup(state);
  if (options.recordImage ?? true)
    await state.setImage({ cn: 'cn2', imageId: IDS.image, at: clock.now(), runId: 'image-run' });
  const config = snapshotConfig(options.failover);
  const ports = { shell: cell.shell, cloud: logged(sim, events), rpc: cell.rpc, clock, state };
  return { clock, events, sim, cell, state, config, ports };
}

function indexOf(events: readonly string[], pattern: string | RegExp): number {
  const i = events.findIndex((e) => (typeof pattern === 'string' ? e === pattern : pattern.test(e)));
  if (i < 0) throw new Error(`no event ${String(pattern)} in:\n${events.join('\n')}`);
  return i;
}

function replacementId(sim: SimCloud): string {
  const launched = sim.inventory().instances.find((i) => i.tags['cellops:run-id'] === 'run-7');
  if (!launched) throw new Error('nothing was launched');
  return launched.instanceId;
}

describe('failover in mode snapshot', () => {
  it('replaces the failed CN with an instance from its image, the PN chaindata and its own nodekey and EIP', async () => {
    const { sim, cell, state, config, ports } = await setup();
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });

    expect(result.error).toBeUndefined();
    expect(result.status).toBe('succeeded');
    const instanceId = replacementId(sim);
    const replacement = cell.host('replacement');
    // It runs as cn2, from cn2's key installed 0600, with the PN's chaindata and nothing else of the PN.
    expect(replacement.running).toBe(true);
    expect(replacement.loadedAddress).toBe(CN_ADDRESS);
    expect(replacement.files.get('/var/kcnd/data/klay/nodekey')).toBe(CN_KEY);
    expect(replacement.modes.get('/var/kcnd/data/klay/nodekey')).toBe(0o600);
    expect(replacement.files.get('/var/kcnd/data/klay/chaindata/000001.ldb')).toBe('blocks');
    const left = [...replacement.files.keys()].filter((p) => p.startsWith('/var/kcnd/data/')).sort();
    // No bls-nodekey: there is no backup of one, so kcnd derives it from the nodekey.
    expect(left).toEqual([
      '/var/kcnd/data/klay/chaindata/000001.ldb',
      '/var/kcnd/data/klay/chaindata/CURRENT',
      '/var/kcnd/data/klay/nodekey',
      '/var/kcnd/data/lost+found/.keep',
    ]);
    expect([...replacement.files.values()]).not.toContain(PN1_KEY);
    expect(replacement.files.get('/etc/kcnd/conf/kcnd.conf')).toMatch(/^DATA_DIR=\/var\/kcnd\/data$/m);
    expect(replacement.files.get('/etc/kcnd/conf/kcnd.conf')).not.toMatch(/data-old/);
    // cn2's instance is stopped, the EIP is on the replacement, the new role is recorded.
    const inventory = sim.inventory();
    expect(inventory.instances.find((i) => i.instanceId === IDS.cn2)?.state).toBe('stopped');
    expect(inventory.addresses.find((a) => a.allocationId === IDS.eip)?.instanceId).toBe(instanceId);
    const role = await state.role('cn2');
    expect(role).toMatchObject({ role: 'cn2', instanceId, servedBy: instanceId, runId: 'run-7' });
    expect(role?.address).toBe(inventory.instances.find((i) => i.instanceId === instanceId)?.privateIp);
    // kpnd runs again on pn1, and no two daemons ever ran one identity.
    expect(cell.host('pn1').running).toBe(true);
    expect(cell.violations).toEqual([]);
  });

  it('tags every resource it creates with the run id, the cell and a name', async () => {
    const { sim, config, ports } = await setup();
    await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    const inventory = sim.inventory();
    const created = [
      ...inventory.instances.filter((i) => i.instanceId === replacementId(sim)),
      ...inventory.snapshots,
      ...inventory.volumes.filter((v) => v.snapshotId !== undefined),
    ];
    expect(created).toHaveLength(3);
    for (const resource of created)
      expect(resource.tags).toMatchObject({
        'cellops:run-id': 'run-7',
        'cellops:cell': 'test-cell',
        'cellops:role': 'cn2',
        Name: expect.stringMatching(/^cn2-/) as unknown,
      });
  });

  it('starts kpnd again as soon as the snapshot has started, and launches before the snapshot completes', async () => {
    const { events, sim, config, ports } = await setup();
    await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });

    const stop = indexOf(events, 'ssh pn1: sudo -n systemctl stop kpnd');
    const snapshot = indexOf(events, 'cloud:createSnapshot');
    const start = indexOf(events, 'ssh pn1: sudo -n systemctl start kpnd');
    const launch = indexOf(events, 'cloud:runInstance');
    const waitSnapshot = indexOf(events, 'cloud:waitSnapshotCompleted');
    expect(stop).toBeLessThan(snapshot);
    expect(snapshot).toBeLessThan(start);
    expect(start).toBeLessThan(launch);
    expect(launch).toBeLessThan(waitSnapshot);
    // In simulated time: kpnd was back and the instance launched while the snapshot was still pending.
    const at = (op: string) => sim.calls.find((c) => c.op === op)?.at ?? Number.NaN;
    expect(at('runInstance') - at('createSnapshot')).toBeLessThan(SIM_SNAPSHOT_MS);
    // The volume is made only from the completed snapshot, in the replacement's zone.
    const volume = sim.inventory().volumes.find((v) => v.snapshotId !== undefined);
    expect(volume?.availabilityZone).toBe('sim-region-1c');
    expect(indexOf(events, 'cloud:createVolume')).toBeGreaterThan(waitSnapshot);
  });

  it("stops the failed CN's instance before its Elastic IP moves, and both before kcnd starts with its key", async () => {
    const { events, config, ports } = await setup();
    await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });

    const stop = indexOf(events, 'cloud:stopInstance');
    const stopped = indexOf(events, 'cloud:waitInstanceStopped');
    const associate = indexOf(events, 'cloud:associateAddress');
    const install = indexOf(
      events,
      /^ssh cn2-replacement: sudo -n install -D -m 0600 -- \/dev\/stdin .*klay\/nodekey$/,
    );
    const startKcnd = events.lastIndexOf('ssh cn2-replacement: sudo -n systemctl start kcnd');
    expect(stop).toBeLessThan(stopped);
    expect(stopped).toBeLessThan(associate);
    expect(install).toBeLessThan(startKcnd);
    expect(associate).toBeLessThan(startKcnd);
    // The image starts kcnd at boot: it is stopped before the volume is mounted over its DATA_DIR.
    expect(indexOf(events, 'ssh cn2-replacement: sudo -n systemctl stop kcnd')).toBeLessThan(
      indexOf(events, /^ssh cn2-replacement: cellops-mount-data /),
    );
  });

  it('never puts the nodekey on a command line, in an output or in a step description', async () => {
    const { cell, config, ports } = await setup();
    const shellExec = cell.shell.exec.bind(cell.shell);
    const stdins: string[] = [];
    const commands: string[] = [];
    const shell = {
      ...cell.shell,
      exec: (...args: Parameters<typeof shellExec>) => {
        commands.push(args[1]);
        if (typeof args[2]?.stdin === 'string') stdins.push(args[2].stdin);
        return shellExec(...args);
      },
    };
    const result = await runSteps(snapshotFailoverSteps(), {
      params: PARAMS,
      config,
      ports: { ...ports, shell },
      runId: 'run-7',
    });
    expect(result.status).toBe('succeeded');
    expect(stdins).toContain(CN_KEY);
    expect(commands.join('\n')).not.toContain(CN_KEY);
    expect(result.text()).not.toContain(CN_KEY);
    expect(result.text()).toContain(CN_ADDRESS);
  });

  it('moves a chaindata kept below the volume root to DATA_DIR/klay/chaindata', async () => {
    const nested = Object.fromEntries(Object.entries(PN_VOLUME_FILES).map(([p, c]) => [`kpnd/data/${p}`, c]));
    const { cell, config, ports } = await setup({ volumeFiles: nested });
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.status).toBe('succeeded');
    const replacement = cell.host('replacement');
    expect(replacement.files.get('/var/kcnd/data/klay/chaindata/CURRENT')).toBe('MANIFEST-000001');
    expect([...replacement.files.keys()].some((p) => p.includes('/kpnd/'))).toBe(false);
    expect(result.outputs.map((o) => o.line)).toContain(
      'chaindata found at /var/kcnd/data/kpnd/data/klay/chaindata',
    );
  });

  it('refuses to replace a CN that looks healthy unless forced', async () => {
    const { cell, sim, config, ports } = await setup();
    cell.host('cn2').reachable = true;
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.status).toBe('failed');
    expect(result.failedStep).toBe('preflight');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(/looks healthy.*--force/);
    expect(sim.calls.map((c) => c.op)).not.toContain('createSnapshot');
    expect(cell.host('pn1').running).toBe(true);
  });

  it('refuses a malformed backup before stopping any PN', async () => {
    const { cell, config, ports } = await setup();
    cell.host('pn2').files.set('/var/cellops/backup/cn2.nodekey', `0x${CN_KEY}`);
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/starts with 0x/);
    expect(result.ran).toEqual(['preflight']);
    expect(String(result.error)).not.toContain(CN_KEY);
  });

  it('refuses a backup that no longer matches its record', async () => {
    const { cell, config, ports } = await setup();
    cell.host('pn2').files.set('/var/cellops/backup/cn2.nodekey', testKey('someone else'));
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/no longer matches the one recorded for cn2/);
  });

  it('says how to make an image when none is recorded', async () => {
    const { config, ports } = await setup({ recordImage: false });
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.failedStep).toBe('preflight');
    expect(String(result.error)).toMatch(/\/cell image cn2/);
  });

  it('skips a PN without a data volume and warns when stopping the chosen one leaves no healthy PN', async () => {
    const { cell, config, ports } = await setup();
    cell.host('pn2').lagBlocks = 500;
    const result = await runSteps(snapshotFailoverSteps().slice(0, 1), {
      params: PARAMS,
      config,
      ports,
      runId: 'run-7',
    });
    expect(result.status).toBe('succeeded');
    const lines = result.outputs.map((o) => o.line);
    expect(lines).toContain('pn2: no dataVolumeId configured, skipped');
    expect(lines).toContain(
      'WARNING: stopping kpnd on pn1 leaves the cell with no healthy PN until it is started again',
    );
    expect(result.facts).toMatchObject({ pn: 'pn1', pnVolumeId: IDS.pn1Data, failedAddress: CN_ADDRESS });
  });

  it('lists the tagged resources it left when a step fails midway, and starts kpnd again', async () => {
    const { sim, cell, config, ports } = await setup();
    sim.failNext('attachVolume', new ExternalError('ec2_error', 'AttachVolume failed: VolumeLimitExceeded'));
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });

    expect(result.status).toBe('failed');
    expect(result.failedStep).toBe('attach-volume');
    const instanceId = replacementId(sim);
    const snapshotId = sim.inventory().snapshots[0]?.snapshotId ?? '';
    const volumeId = sim.inventory().volumes.find((v) => v.snapshotId === snapshotId)?.volumeId ?? '';
    const message = (result.error as Error).message;
    expect(message).toMatch(/^AttachVolume failed: VolumeLimitExceeded\nResources this run left/);
    for (const id of [instanceId, snapshotId, volumeId]) expect(message).toContain(id);
    expect(result.outputs.some((o) => o.stepId === 'attach-volume' && o.line.includes(instanceId))).toBe(
      true,
    );
    expect(result.error).toBeInstanceOf(ExternalError);
    // Nothing is deleted; the PN is serving; the failed CN was not touched yet.
    expect(sim.inventory().instances.find((i) => i.instanceId === instanceId)?.state).toBe('running');
    expect(cell.host('pn1').running).toBe(true);
    expect(sim.inventory().instances.find((i) => i.instanceId === IDS.cn2)?.state).toBe('running');
  });

  it('stops the run and rolls back when the replacement reports another node address', async () => {
    const { sim, cell, config, ports } = await setup();
    const rpc: NodeRpc = {
      ...cell.rpc,
      nodeAddress: async (endpoint, options) =>
        endpoint.name === 'cn2-replacement'
          ? '0x000000000000000000000000000000000000dead'
          : cell.rpc.nodeAddress(endpoint, options),
    };
    const result = await runSteps(snapshotFailoverSteps(), {
      params: PARAMS,
      config,
      ports: { ...ports, rpc },
      runId: 'run-7',
    });
    expect(result.failedStep).toBe('verify');
    expect(result.error).toBeInstanceOf(SafetyGateError);
    expect(String(result.error)).toMatch(/reports node address 0x0+dead, not cn2's/);
    expect(result.undone).toEqual(['start-kcnd', 'move-ip', 'install-nodekey', 'stop-pn']);
    const replacement = cell.host('replacement');
    expect(replacement.running).toBe(false);
    expect(replacement.files.has('/var/kcnd/data/klay/nodekey')).toBe(false);
    // The IP goes back where it was; fencing is never undone.
    const inventory = sim.inventory();
    expect(inventory.addresses.find((a) => a.allocationId === IDS.eip)?.instanceId).toBe(IDS.cn2);
    expect(inventory.instances.find((i) => i.instanceId === IDS.cn2)?.state).toBe('stopped');
  });

  it('finds its instance by tag after a crash lost the fact, instead of launching a second', async () => {
    const { sim, config, ports } = await setup();
    const steps = snapshotFailoverSteps();
    const first = await runSteps(steps.slice(0, 4), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(first.status).toBe('succeeded');
    const { instanceId: _lost, privateIp: _ip, ...facts } = first.facts;
    const launch = steps.filter((s) => s.id === 'launch');
    const again = await runSteps(launch, { params: PARAMS, config, ports, runId: 'run-7', facts });
    expect(again.status).toBe('succeeded');
    expect(again.facts.instanceId).toBe(first.facts.instanceId);
    expect(sim.calls.filter((c) => c.op === 'runInstance')).toHaveLength(1);
  });

  it('describes each step with the exact calls, commands and hosts, and no secret', async () => {
    const { config, ports } = await setup();
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    const text = Object.fromEntries(result.descriptions.map((d) => [d.stepId, d.text]));
    expect(text['stop-pn']).toContain('`sudo -n systemctl stop kpnd` on pn1 10.0.3.11');
    expect(text.snapshot).toMatch(
      /EC2 CreateSnapshot of vol-0pn1data .*`sudo -n systemctl start kpnd` on pn1/,
    );
    expect(text.launch).toMatch(
      /EC2 RunInstances from ami-0cn2image \(m6i\.2xlarge, subnet-0123, security groups sg-0123, key pair cn\)/,
    );
    expect(text['attach-volume']).toMatch(/CreateVolume .* in sim-region-1c .*AttachVolume .* as \/dev\/sdf/);
    expect(text['prepare-data']).toMatch(/DELETE everything on it except klay\/chaindata/);
    expect(text['install-nodekey']).toContain(
      'sudo -n install -D -m 0600 -- /dev/stdin /var/kcnd/data/klay/nodekey',
    );
    expect(text['fence-failed-cn']).toMatch(
      /Before cn2's nodekey is written anywhere.*StopInstances i-00000000000000c02/,
    );
    expect(text['move-ip']).toMatch(/EC2 AssociateAddress eipalloc-0123 .*AllowReassociation/);
    expect(text['move-ip']).toContain('The PNs dial cn2 at: pn1 → not listed; pn2 → not listed');
    expect(text['stop-pn']).toContain('`sudo -n pgrep -x -- kpn` must find no process');
    expect(text.snapshot).toMatch(/`sudo -n sync` there;.*CreateSnapshot/);
    expect(text['prepare-data']).toContain('`sudo -n systemctl disable kcnd`');
    expect(text['start-kcnd']).toMatch(/still stopped.*`sudo -n systemctl start kcnd`/);
    expect(Object.values(text).join('\n')).not.toContain(CN_KEY);
    for (const step of snapshotFailoverSteps()) expect(text[step.id]).toBeDefined();
    // A dry run's plan is rendered before any fact exists.
    const plan = snapshotFailoverSteps().map((s) =>
      s.describe({ params: PARAMS, config, fact: () => undefined }),
    );
    expect(plan[2]).toMatch(/CreateSnapshot of the PN's dataVolumeId .*first healthy of pn2, pn1/);
    expect(plan[3]).toContain('EC2 RunInstances from the latest recorded image');
    expect(
      snapshotFailoverSteps()
        .filter((s) => s.destructive)
        .map((s) => s.id),
    ).toEqual([
      'stop-pn',
      'prepare-data',
      'fence-failed-cn',
      'install-nodekey',
      'confirm-eip-holder',
      'move-ip',
      'start-kcnd',
    ]);
  });

  it("sees the failed CN's instance stopped before the key is written, on a replacement whose kcnd is stopped, disabled and has no kcn", async () => {
    const { events, config, ports } = await setup();
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.status).toBe('succeeded');
    const install = indexOf(
      events,
      /^ssh cn2-replacement: sudo -n install -D -m 0600 -- \/dev\/stdin .*klay\/nodekey$/,
    );
    const stopped = indexOf(events, 'cloud:waitInstanceStopped');
    // After the wait, the instance is described (seen stopped) before the write, and again by install-nodekey.
    expect(stopped).toBeLessThan(install);
    expect(events.slice(stopped, install)).toContain('cloud:describeInstance');
    expect(indexOf(events, 'ssh cn2-replacement: sudo -n systemctl disable kcnd')).toBeLessThan(install);
    expect(events.lastIndexOf('ssh cn2-replacement: sudo -n pgrep -x -- kcn', install)).toBeGreaterThan(
      stopped,
    );
  });

  it('asks for an approval between the key install and the kcnd start', async () => {
    const { events, config, ports } = await setup();
    const result = await runSteps(snapshotFailoverSteps(), {
      params: PARAMS,
      config,
      ports,
      runId: 'run-7',
      approve: (step) => {
        events.push(`approve:${step.id}`);
        return true;
      },
    });
    expect(result.status).toBe('succeeded');
    const install = indexOf(events, /^ssh cn2-replacement: sudo -n install .*klay\/nodekey$/);
    const approval = indexOf(events, 'approve:start-kcnd');
    const start = indexOf(events, 'ssh cn2-replacement: sudo -n systemctl start kcnd');
    expect(install).toBeLessThan(approval);
    expect(approval).toBeLessThan(start);
    const steps = snapshotFailoverSteps();
    expect(steps.find((st) => st.id === 'start-kcnd')?.destructive).toBe(true);
  });

  it('runs sync after kpnd stops and before CreateSnapshot, and no start of kpnd before the snapshot', async () => {
    const { events, config, ports } = await setup();
    await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    const stop = indexOf(events, 'ssh pn1: sudo -n systemctl stop kpnd');
    const noKpn = indexOf(events, 'ssh pn1: sudo -n pgrep -x -- kpn');
    const sync = indexOf(events, 'ssh pn1: sudo -n sync');
    const create = indexOf(events, 'cloud:createSnapshot');
    expect(stop).toBeLessThan(noKpn);
    expect(noKpn).toBeLessThan(sync);
    expect(sync).toBeLessThan(create);
    expect(indexOf(events, 'ssh pn1: sudo -n systemctl start kpnd')).toBeGreaterThan(create);
  });

  it('freezes the PN file system around CreateSnapshot when configured, and thaws it before kpnd starts', async () => {
    const { events, cell, config, ports } = await setup({ failover: { freeze: true } });
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.status).toBe('succeeded');
    const freeze = indexOf(events, 'ssh pn1: sudo -n fsfreeze -f -- /var/kpnd/data');
    const create = indexOf(events, 'cloud:createSnapshot');
    const thaw = indexOf(events, 'ssh pn1: sudo -n fsfreeze -u -- /var/kpnd/data');
    expect(indexOf(events, 'ssh pn1: sudo -n sync')).toBeLessThan(freeze);
    expect(freeze).toBeLessThan(create);
    expect(create).toBeLessThan(thaw);
    expect(thaw).toBeLessThan(indexOf(events, 'ssh pn1: sudo -n systemctl start kpnd'));
    expect(cell.host('pn1').frozen).toBe(false);
  });

  it('needs an approver to confirm before taking the Elastic IP from a foreign instance', async () => {
    const foreign = 'i-0f0e1g2n';
    const denied = await setup({ eipHolder: foreign });
    const refused = await runSteps(snapshotFailoverSteps(), {
      params: PARAMS,
      config: denied.config,
      ports: denied.ports,
      runId: 'run-7',
      approve: (step) => step.id !== 'confirm-eip-holder',
    });
    expect(refused.status).toBe('aborted');
    expect(refused.failedStep).toBe('confirm-eip-holder');
    expect(refused.outputs.map((o) => o.line).join('\n')).toMatch(
      /WARNING: Elastic IP eipalloc-0123 .* is held by i-0f0e1g2n/,
    );
    expect(denied.sim.inventory().addresses[0]?.instanceId).toBe(foreign);

    const approved = await setup({ eipHolder: foreign });
    const moved = await runSteps(snapshotFailoverSteps(), {
      params: PARAMS,
      config: approved.config,
      ports: approved.ports,
      runId: 'run-7',
    });
    expect(moved.status).toBe('succeeded');
    expect(moved.approved).toContain('confirm-eip-holder');
    expect(approved.sim.inventory().addresses[0]?.instanceId).toBe(replacementId(approved.sim));
  });

  it("does not ask for the confirmation when the Elastic IP is on the failed CN's instance", async () => {
    const { config, ports } = await setup();
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.skipped).toContain('confirm-eip-holder');
  });

  it('a key install failing half way runs its own undo: the key written is removed from the replacement', async () => {
    const { cell, config, ports } = await setup();
    let failed = false;
    const shell = {
      ...cell.shell,
      exec: (...args: Parameters<typeof cell.shell.exec>) => {
        if (
          !failed &&
          args[0].name === 'cn2-replacement' &&
          args[1] === 'sudo -n rm -f -- /var/kcnd/data/klay/bls-nodekey'
        ) {
          failed = true;
          return Promise.resolve({
            exitCode: 1,
            stdout: '',
            stderr: 'rm: Input/output error',
            truncated: false,
            durationMs: 1,
          });
        }
        return cell.shell.exec(...args);
      },
    };
    const result = await runSteps(snapshotFailoverSteps(), {
      params: PARAMS,
      config,
      ports: { ...ports, shell },
      runId: 'run-7',
    });
    expect(result.failedStep).toBe('install-nodekey');
    expect(result.undone[0]).toBe('install-nodekey');
    const replacement = cell.host('replacement');
    expect(replacement.files.has('/var/kcnd/data/klay/nodekey')).toBe(false);
    expect(replacement.running).toBe(false);
  });

  it('moves the secondary private IP the PNs dial from the failed instance to the replacement', async () => {
    const { sim, cell, config, ports } = await setup({
      failover: { privateIp: { address: '10.0.2.50/24', device: 'eth0' } },
    });
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.status).toBe('succeeded');
    const instances = sim.inventory().instances;
    expect(instances.find((i) => i.instanceId === IDS.cn2)?.secondaryIps).toEqual([]);
    expect(instances.find((i) => i.instanceId === replacementId(sim))?.secondaryIps).toEqual(['10.0.2.50']);
    expect(cell.host('replacement').addresses.get('eth0')).toEqual(['10.0.2.50/24']);
  });

  it('fences a key configured outside DATA_DIR with --nodekey in kcnd.conf, at its real path', async () => {
    const { cell, config, ports } = await setup();
    const cn2 = cell.host('cn2');
    cn2.reachable = true;
    cn2.running = false;
    cn2.files.set(
      '/etc/kcnd/conf/kcnd.conf',
      'DATA_DIR=/var/kcnd/data\nADDITIONAL="--nodekey /etc/kcnd/keys/nodekey"\n',
    );
    cn2.files.set('/etc/kcnd/keys/nodekey', CN_KEY);
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.status).toBe('succeeded');
    expect(cn2.files.has('/etc/kcnd/keys/nodekey')).toBe(false);
    expect(cn2.files.get('/etc/kcnd/keys/nodekey.cellops-run-7')).toBe(CN_KEY);
    expect(cn2.files.has('/var/kcnd/data/klay/nodekey')).toBe(false);
  });

  it('records the fenced old machine with the new role, for the monitor to watch', async () => {
    const { state, config, ports } = await setup();
    await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect((await state.role('cn2'))?.fenced).toEqual({
      name: 'cn2',
      address: '10.0.2.11',
      instanceId: IDS.cn2,
      nodeAddress: CN_ADDRESS,
    });
  });

  it("records the replacement's pinned host keys with its role, and later runbooks pin them over SSH", async () => {
    const { sim, state, config, ports } = await setup();
    const result = await runSteps(snapshotFailoverSteps(), { params: PARAMS, config, ports, runId: 'run-7' });
    expect(result.error).toBeUndefined();
    const instanceId = replacementId(sim);
    const printed = sim.hostKeysOf(instanceId);
    expect(printed.length).toBeGreaterThan(0);
    const role = await state.role('cn2');
    expect(role?.hostKeys).toEqual(printed);

    // The image freshness check and the image runbook reach the replacement with that pin, not known_hosts.
    const seen: HostRef[] = [];
    const shell: Shell = {
      exec: (host, command, options) => {
        seen.push(host);
        return ports.shell.exec(host, command, options);
      },
      close: () => ports.shell.close(),
    };
    const later = { ...ports, shell };
    await runSteps(
      checkSteps().filter((s) => s.id === 'image-fresh'),
      { params: { cn: 'cn2' }, config, ports: later, undoOnFailure: false },
    );
    await runSteps(
      imageSteps().filter((s) => s.id === 'preflight'),
      { params: { cn: 'cn2' }, config, ports: later, undoOnFailure: false },
    );
    const toReplacement = seen.filter((h) => h.address === role?.address);
    expect(toReplacement.length).toBeGreaterThan(1);
    for (const host of toReplacement) expect(host.hostKeys).toEqual(printed);
  });
});
