/**
 * The standby failover end to end in the test lab: the engine on a real Redis, the registry's runbooks,
 * real OpenSSH (host keys checked) and the node stand-ins' metrics and JSON-RPC; approvals given through
 * engine.decide by an approver other than the requester. See test/support/lab-failover.ts for the wiring.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodekeyProblem } from '../../../src/runbooks/nodekey.js';
import type { RunRecord, StepStatus } from '../../../src/runbooks/types.js';
import { labBackupPath } from '../../lab/lab-config.js';
import { skipWithoutNamespaces, startLab, type Lab } from '../../lab/lab.js';
import {
  APPROVER,
  REQUESTER,
  makeLagging,
  startLabFailover,
  writeLabBackup,
  type ApprovalRequest,
  type LabFailover,
} from '../../support/lab-failover.js';
import { jsonRpc } from '../../support/json-rpc.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';

const HOSTS = ['cn1', 'cn1s', 'pn1', 'pn2'];
const RUN_TIMEOUT_MS = 90_000;
/**
 * CELLOPS_LAB_NAMESPACES=0 runs the loopback fallback even as root, to check what it skips (outside CI:
 * with CI=true the IP-move tests fail instead).
 */
const LAB_MODE = process.env.CELLOPS_LAB_NAMESPACES === '0' ? { namespaces: false } : {};

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

function prefix(): string {
  return `cellops:test:lab-failover:${randomBytes(4).toString('hex')}:`;
}

async function reportedAddress(lab: Lab, host: string): Promise<string> {
  return String(await jsonRpc(lab.host(host).rpcUrl, 'kaia_nodeAddress')).toLowerCase();
}

function keyPath(lab: Lab, host: string, file = 'nodekey'): string {
  return join(lab.host(host).dataDir, 'klay', file);
}

async function fileOn(lab: Lab, host: string, path: string): Promise<string | undefined> {
  const result = await lab.run(host, ['cat', path]);
  return result.code === 0 ? result.stdout : undefined;
}

async function existsOn(lab: Lab, host: string, path: string): Promise<boolean> {
  return (await lab.run(host, ['test', '-e', path])).code === 0;
}

/** Names in DATA_DIR and DATA_DIR/klay of a host, and files a run moved aside there. */
async function listing(lab: Lab, host: string): Promise<string[]> {
  const dataDir = lab.host(host).dataDir;
  const result = await lab.run(host, ['ls', '-A1', dataDir, join(dataDir, 'klay')]);
  return result.stdout.split('\n').filter(Boolean);
}

/** What a failover may change on the hosts: services, keys, files beside them and the VIP. */
async function cellSnapshot(lab: Lab): Promise<Record<string, unknown>> {
  const snapshot: Record<string, unknown> = {};
  for (const host of HOSTS) {
    snapshot[host] = {
      running: await lab.isNodeRunning(host),
      nodekey: await fileOn(lab, host, keyPath(lab, host)),
      files: await listing(lab, host),
    };
  }
  snapshot.backup = await fileOn(lab, 'cn1s', labBackupPath(lab, 'cn1'));
  snapshot.vip = await lab.vipHolders();
  return snapshot;
}

function statuses(run: RunRecord): Record<string, StepStatus> {
  return Object.fromEntries(run.steps.map((s) => [s.id, s.status]));
}

function asideFiles(files: readonly string[]): string[] {
  return files.filter((f) => f.includes('.cellops-'));
}

/** Approves every request at once, except those a test wants to hold: they go to `held`. */
function approveAllBut(holds: Record<string, (request: ApprovalRequest) => Promise<void>>) {
  return async (request: ApprovalRequest): Promise<void> => {
    const hold = holds[request.stepId];
    if (hold) await hold(request);
    else await request.approve();
  };
}

describe('a full standby failover of cn1 in the lab', () => {
  let lab: Lab;
  let setup: LabFailover;
  let backupRun: RunRecord;
  let run: RunRecord;

  beforeAll(async () => {
    lab = await startLab({ hosts: HOSTS, ...LAB_MODE });
    setup = startLabFailover({ lab, redisUrl: redis.url, prefix: prefix() });
    // The backup is made the way operators make it: by the backup-nodekey runbook while cn1 is healthy.
    backupRun = await setup.finished((await setup.start('backup-nodekey', { cn: 'cn1' })).id, RUN_TIMEOUT_MS);
    makeLagging(lab, 'cn1');
    run = await setup.finished((await setup.start('failover', { cn: 'cn1' })).id, RUN_TIMEOUT_MS);
  }, 180_000);

  afterAll(async () => {
    await setup?.close();
    await lab?.stop();
  });

  it('backs up cn1 with the backup-nodekey runbook first', async () => {
    expect(backupRun.status, backupRun.error).toBe('succeeded');
    expect(await fileOn(lab, 'cn1s', labBackupPath(lab, 'cn1'))).toBe(lab.host('cn1').initialNodekey);
  });

  it('succeeds through every step, each destructive one approved by someone other than the requester', () => {
    expect(setup.errors).toEqual([]);
    expect(run.status, run.error).toBe('succeeded');
    expect(run.requester).toBe(REQUESTER);
    const s = statuses(run);
    for (const id of ['preflight', 'fence-old-active', 'stop-standby', 'replace-nodekey', 'start-standby'])
      expect(s[id], id).toBe('succeeded');
    expect(s.verify).toBe('succeeded');
    expect(s['record-roles']).toBe('succeeded');
    // cn1 was reachable, so nobody had to confirm it was powered off.
    expect(s['confirm-old-active-off']).toBe('skipped');
    for (const step of run.steps.filter((st) => st.destructive && st.status === 'succeeded')) {
      expect(
        step.approvals.map((a) => a.user),
        step.id,
      ).toEqual([APPROVER]);
      expect(step.approvals.every((a) => a.decision === 'approve')).toBe(true);
    }
    // Exactly the destructive steps that ran asked for an approval, once each: confirm-old-active-off and
    // confirm-ip-moved were not needed (cn1 was reachable, the VIP answered from cn1s).
    const asked = (type: string) =>
      setup.events.flatMap((e) =>
        e.run.id === run.id && e.event.type === type && 'stepId' in e.event ? [e.event.stepId] : [],
      );
    const approvalSteps = ['fence-old-active', 'stop-standby', 'replace-nodekey', 'move-ip', 'start-standby'];
    expect(asked('approval-requested')).toEqual(approvalSteps);
    expect(asked('approval-decided')).toEqual(approvalSteps);
    expect(run.steps.filter((st) => st.approvals.length > 0).map((st) => st.id)).toEqual(approvalSteps);
  });

  it("ends with cn1s serving cn1's node address", async () => {
    expect(await reportedAddress(lab, 'cn1s')).toBe(lab.host('cn1').initialNodeAddress);
    expect(await fileOn(lab, 'cn1s', keyPath(lab, 'cn1s'))).toBe(lab.host('cn1').initialNodekey);
    // The standby's own key is kept aside by the run, for a failback.
    const aside = `${keyPath(lab, 'cn1s')}.cellops-${run.id}`;
    expect(await fileOn(lab, 'cn1s', aside)).toBe(lab.host('cn1s').initialNodekey);
  });

  it('fences cn1: kcnd stopped and its nodekey moved aside', async () => {
    expect(await lab.isNodeRunning('cn1')).toBe(false);
    expect(await existsOn(lab, 'cn1', keyPath(lab, 'cn1'))).toBe(false);
    expect(await existsOn(lab, 'cn1', join(lab.host('cn1').dataDir, 'nodekey'))).toBe(false);
    expect(await fileOn(lab, 'cn1', `${keyPath(lab, 'cn1')}.cellops-${run.id}`)).toBe(
      lab.host('cn1').initialNodekey,
    );
  });

  it('moves the VIP to cn1s, where it reaches the node running as cn1', async (ctx) => {
    skipWithoutNamespaces(lab, 'the IP move', (note) => ctx.skip(note));
    expect(await lab.vipHolders()).toEqual(['cn1s']);
    await lab.flushNeighbours();
    const viaVip = await jsonRpc(`http://${lab.vipAddress ?? ''}:8551`, 'kaia_nodeAddress');
    expect(String(viaVip).toLowerCase()).toBe(lab.host('cn1').initialNodeAddress);
  });

  it('records that cn1s now serves as cn1', async () => {
    const role = await setup.redis.hget(setup.keys.cellState(), 'role:cn1');
    expect(JSON.parse(role ?? '{}')).toMatchObject({ cn: 'cn1', servedBy: 'cn1s', runId: run.id });
  });

  it('never lets a nodekey into the logs, the run records, the audit streams or the events', async () => {
    const secrets = [lab.host('cn1').initialNodekey, lab.host('cn1s').initialNodekey];
    const log = setup.logText();
    // Not a vacuous grep: the log, records and audit hold the runs.
    expect(log).toContain(run.id);
    const places: Record<string, string> = {
      log,
      backupRecord: await setup.rawRunRecord(backupRun.id),
      runRecord: await setup.rawRunRecord(run.id),
      backupAudit: await setup.rawAudit(backupRun.id),
      runAudit: await setup.rawAudit(run.id),
      cellAudit: JSON.stringify(await setup.redis.xrange(setup.keys.auditAll(), '-', '+')),
      cellState: JSON.stringify(await setup.redis.hgetall(setup.keys.cellState())),
      events: JSON.stringify(setup.events.map((e) => ({ run: e.run, event: e.event }))),
    };
    expect(places.runAudit).toContain('replace-nodekey');
    for (const [where, text] of Object.entries(places)) {
      expect(text.length, where).toBeGreaterThan(0);
      for (const secret of secrets) {
        expect(text.includes(secret), `${where} holds a nodekey`).toBe(false);
        expect(text.toUpperCase().includes(secret.toUpperCase()), `${where} holds a nodekey`).toBe(false);
      }
    }
  });
});

describe('failovers the lab refuses before changing anything', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await startLab({ hosts: HOSTS, ...LAB_MODE });
    makeLagging(lab, 'cn1');
  });

  afterAll(async () => {
    await lab?.stop();
  });

  async function refused(
    overrides: Record<string, unknown> = {},
  ): Promise<{ run: RunRecord; setup: LabFailover; before: unknown; after: unknown }> {
    const before = await cellSnapshot(lab);
    const setup = startLabFailover({ lab, redisUrl: redis.url, prefix: prefix(), overrides });
    try {
      const run = await setup.finished((await setup.start('failover', { cn: 'cn1' })).id, RUN_TIMEOUT_MS);
      return { run, setup, before, after: await cellSnapshot(lab) };
    } finally {
      await setup.close();
    }
  }

  it('stops at preflight, before any command, when cn1s presents a host key other than the known one', async () => {
    writeLabBackup(lab, 'cn1', lab.host('cn1').initialNodekey);
    // known_hosts lists cn1's own host key for cn1s's address: a man in the middle, as far as we know.
    const wrongKnownHosts = join(lab.root, 'client', 'known_hosts.wrong');
    const lines = HOSTS.map((h) => {
      const host = lab.host(h);
      const name = lab.sshPort === 22 ? host.address : `[${host.address}]:${lab.sshPort}`;
      const key = h === 'cn1s' ? lab.host('cn1').hostKeys[0] : host.hostKeys[0];
      return `${name} ${key?.publicKey ?? ''}`;
    });
    writeFileSync(wrongKnownHosts, `${lines.join('\n')}\n`);

    const { run, setup, before, after } = await refused({ ssh: { knownHosts: wrongKnownHosts } });
    expect(run.status).toBe('failed');
    expect(statuses(run).preflight).toBe('failed');
    expect(run.error).toContain('cn1s');
    expect(run.error).toMatch(/host key/i);
    expect(run.error).toContain(lab.host('cn1s').hostKeys[0]?.fingerprint ?? 'no fingerprint');
    // It tried SSH, and not one command ran on any host.
    expect(setup.meter.commands.length).toBeGreaterThan(0);
    expect(setup.meter.commands.filter((c) => c.failed === undefined)).toEqual([]);
    expect(run.steps.filter((s) => s.id !== 'preflight').every((s) => s.status === 'pending')).toBe(true);
    expect(after).toEqual(before);
  });

  it('refuses a malformed backup at preflight and leaves the standby untouched', async () => {
    writeLabBackup(lab, 'cn1', `0x${lab.host('cn1').initialNodekey}`);
    const { run, before, after } = await refused();
    expect(run.status).toBe('failed');
    expect(statuses(run).preflight).toBe('failed');
    expect(run.error).toMatch(/malformed/);
    expect(run.error).not.toContain(lab.host('cn1').initialNodekey);
    expect(after).toEqual(before);
    expect(await lab.isNodeRunning('cn1s')).toBe(true);
    expect(await reportedAddress(lab, 'cn1s')).toBe(lab.host('cn1s').initialNodeAddress);
  });

  it('refuses a legacy $DATA_DIR/nodekey on the standby, which would shadow the installed key', async () => {
    writeLabBackup(lab, 'cn1', lab.host('cn1').initialNodekey);
    const legacy = join(lab.host('cn1s').dataDir, 'nodekey');
    writeFileSync(legacy, lab.host('cn1s').initialNodekey, { mode: 0o600 });
    try {
      const { run, before, after } = await refused();
      expect(run.status).toBe('failed');
      expect(statuses(run).preflight).toBe('failed');
      expect(run.error).toContain(legacy);
      expect(after).toEqual(before);
      expect(await existsOn(lab, 'cn1s', legacy)).toBe(true);
    } finally {
      await lab.run('cn1s', ['rm', '-f', legacy]);
    }
  });
});

describe('an unreachable old active', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await startLab({ hosts: HOSTS, ...LAB_MODE });
  });

  afterAll(async () => {
    await lab?.stop();
  });

  it('waits for an approver to confirm it is powered off, and proceeds only after that', async () => {
    writeLabBackup(lab, 'cn1', lab.host('cn1').initialNodekey);
    makeLagging(lab, 'cn1');
    await lab.makeUnreachable('cn1');

    let seenAtRequest: { status: string; standbyRunning: boolean; standbyKey?: string } | undefined;
    let eventsAtRequest = 0;
    let approvedAt = 0;
    const setup = startLabFailover({
      lab,
      redisUrl: redis.url,
      prefix: prefix(),
      // Fail fast on the dead host rather than wait the default connect timeout.
      overrides: { ssh: { connectTimeout: '2s' } },
      onApproval: approveAllBut({
        'confirm-old-active-off': async (request) => {
          const current = await setup.engine.get(request.run.id);
          seenAtRequest = {
            status: current?.status ?? 'missing',
            standbyRunning: await lab.isNodeRunning('cn1s'),
            ...((await fileOn(lab, 'cn1s', keyPath(lab, 'cn1s'))) === undefined
              ? {}
              : { standbyKey: await fileOn(lab, 'cn1s', keyPath(lab, 'cn1s')) }),
          };
          // What the approver does before confirming: power cn1 off (it still runs behind its dead link).
          await lab.stopNode('cn1');
          eventsAtRequest = setup.events.length;
          approvedAt = performance.now();
          await request.approve();
        },
      }),
    });
    try {
      const run = await setup.finished((await setup.start('failover', { cn: 'cn1' })).id, RUN_TIMEOUT_MS);
      expect(setup.errors).toEqual([]);
      expect(run.status, run.error).toBe('succeeded');
      const s = statuses(run);
      expect(s['fence-old-active']).toBe('succeeded');
      expect(s['confirm-old-active-off']).toBe('succeeded');
      expect(run.facts.fenceSsh).toBe('unreachable');
      expect(
        run.steps.find((st) => st.id === 'confirm-old-active-off')?.approvals.map((a) => a.user),
      ).toEqual([APPROVER]);

      // While the confirmation was pending, the run waited and the standby was untouched.
      expect(seenAtRequest).toEqual({
        status: 'waiting-approval',
        standbyRunning: true,
        standbyKey: lab.host('cn1s').initialNodekey,
      });
      const started = setup.events
        .slice(0, eventsAtRequest)
        .filter((e) => e.event.type === 'step-started')
        .map((e) => (e.event.type === 'step-started' ? e.event.stepId : ''));
      expect(started).not.toContain('stop-standby');
      const stopStandby = setup.events.find(
        (e) => e.event.type === 'step-started' && e.event.stepId === 'stop-standby',
      );
      expect(stopStandby?.at).toBeGreaterThan(approvedAt);

      expect(await reportedAddress(lab, 'cn1s')).toBe(lab.host('cn1').initialNodeAddress);
    } finally {
      await setup.close();
    }
  });
});

describe('a failover whose step fails after the key was installed', () => {
  let lab: Lab;
  let setup: LabFailover;
  let run: RunRecord;
  let hostJson: string;
  let hostSpec: string;

  beforeAll(async () => {
    lab = await startLab({ hosts: HOSTS, ...LAB_MODE });
    writeLabBackup(lab, 'cn1', lab.host('cn1').initialNodekey);
    makeLagging(lab, 'cn1');
    hostJson = join(lab.host('cn1s').root, 'lab', 'host.json');
    hostSpec = readFileSync(hostJson, 'utf8');
    setup = startLabFailover({
      lab,
      redisUrl: redis.url,
      prefix: prefix(),
      onApproval: approveAllBut({
        // The stand-in exits at once on an unreadable host file, so `systemctl start kcnd` fails on cn1s
        // (while `systemctl is-active` still answers).
        'start-standby': async (request) => {
          writeFileSync(hostJson, '{ not json');
          await request.approve();
        },
      }),
    });
    run = await setup.finished((await setup.start('failover', { cn: 'cn1' })).id, RUN_TIMEOUT_MS);
  }, 180_000);

  afterAll(async () => {
    await setup?.close();
    await lab?.stop();
  });

  it('fails at the start of kcnd and undoes the key installation', () => {
    expect(setup.errors).toEqual([]);
    expect(run.status).toBe('failed');
    const s = statuses(run);
    expect(s['start-standby']).toBe('failed');
    expect(s['replace-nodekey']).toBe('undone');
    // The step's own failure leads the message; undo failures (kcnd cannot start yet) come after it.
    expect(run.error).toMatch(/^step start-standby .*systemctl start kcnd/);
  });

  it("leaves the standby holding its own key and nothing of cn1's", async () => {
    expect(await fileOn(lab, 'cn1s', keyPath(lab, 'cn1s'))).toBe(lab.host('cn1s').initialNodekey);
    expect(asideFiles(await listing(lab, 'cn1s'))).toEqual([]);
    expect(await existsOn(lab, 'cn1s', keyPath(lab, 'cn1s', 'bls-nodekey'))).toBe(false);
  });

  it('gives the VIP back to cn1', async (ctx) => {
    skipWithoutNamespaces(lab, 'the IP move back', (note) => ctx.skip(note));
    expect(statuses(run)['move-ip']).toBe('undone');
    expect(await lab.vipHolders()).toEqual(['cn1']);
  });

  it('lets the standby start as itself once the fault is gone', async () => {
    writeFileSync(hostJson, hostSpec);
    await lab.startNode('cn1s');
    expect(await reportedAddress(lab, 'cn1s')).toBe(lab.host('cn1s').initialNodeAddress);
    expect(nodekeyProblem((await fileOn(lab, 'cn1s', keyPath(lab, 'cn1s'))) ?? '')).toBeUndefined();
  });
});
