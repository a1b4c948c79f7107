import { describe, expect, it } from 'vitest';
import { buildReport, stepTargets, type ChainReading } from '../../../src/report/build-report.js';
import { createReportSource } from '../../../src/report/gather-report.js';
import { renderReportMarkdown } from '../../../src/report/markdown.js';
import { renderReport } from '../../../src/views/report.js';
import type { BlockConsensusInfo } from '../../../src/ports/node-rpc.js';
import type { RunIncident } from '../../../src/runbooks/types.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { APPROVER, REQUESTER, runEngineFailover } from '../../support/engine-failover.js';
import { CN1_ADDRESS, CN1_KEY, CN1S_KEY } from '../../support/standby-cell.js';

const OTHER = `0x${'ab'.repeat(20)}`;
const NO_CHAIN: ChainReading = { kind: 'unavailable', reason: 'not read in this test' };
const alertAt = (now: number): RunIncident => ({
  id: 'cn1-alert',
  kind: 'down',
  openedAt: now - 60_000,
  postedAt: now - 45_000,
});

/** One block a second ending at `head` (its time `headAt` ms); `signs(n)` says whether cn1 sealed block n. */
function chain(
  head: number,
  headAt: number,
  count: number,
  signs: (n: number) => boolean,
): BlockConsensusInfo[] {
  return Array.from({ length: count }, (_, i) => {
    const number = head - count + 1 + i;
    return {
      number,
      timestamp: Math.floor(headAt / 1000) - (head - number),
      committee: [CN1_ADDRESS, OTHER],
      committers: signs(number) ? [CN1_ADDRESS, OTHER] : [OTHER],
    };
  });
}

describe('the report of a standby failover run by the engine', () => {
  it('has one timeline entry per audit entry (output lines aside), in order, between the alert and the signing', async () => {
    const { store, run } = await runEngineFailover({ incident: alertAt });
    expect(run.status).toBe('succeeded');
    const audit = await store.readAudit(run.id);
    const report = buildReport({ run, audit, chain: NO_CHAIN, now: run.endedAt ?? 0 });

    const events = audit.filter((e) => e.what !== 'step-output');
    const fromAudit = report.timeline.filter((e) => e.source === 'audit');
    expect(fromAudit.map((e) => [e.auditId, e.at, e.what, e.stepId])).toEqual(
      events.map((e) => [e.id, e.at, e.what, e.stepId]),
    );
    expect(report.timeline[0]).toMatchObject({ source: 'alert', at: run.incident?.openedAt });
    const signing = report.timeline.findIndex((e) => e.source === 'signing');
    expect(report.timeline[signing]?.at).toBe(run.facts.signedAt);
    expect(report.timeline[signing + 1]).toMatchObject({ what: 'step-finished', stepId: 'verify' });

    // Who asked and who approved, as the stream has them.
    expect(fromAudit.find((e) => e.what === 'run-started')?.who).toBe(REQUESTER);
    const decisions = fromAudit.filter((e) => e.what === 'decision');
    expect(decisions.map((e) => e.stepId)).toEqual([
      'fence-old-active',
      'stop-standby',
      'replace-nodekey',
      'move-ip',
      'start-standby',
    ]);
    expect(decisions.every((e) => e.who === APPROVER)).toBe(true);

    // Every finished step carries its duration from its start, and where it acted.
    for (const done of fromAudit.filter((e) => e.what === 'step-finished' && !e.text.includes('skipped'))) {
      const start = events.filter((e) => e.what === 'step-started' && e.stepId === done.stepId).at(-1);
      expect(done.durationMs).toBe(done.at - (start?.at ?? Number.NaN));
    }
    const fence = fromAudit.find((e) => e.what === 'step-finished' && e.stepId === 'fence-old-active');
    expect(fence?.targets).toContain('cn1 (10.0.1.11)');
    const verify = report.steps.find((s) => s.id === 'verify');
    expect(verify?.durationMs).toBeGreaterThan(0);
  });

  it('measures the time to recover from the alert to the CN signing again', async () => {
    const { store, run } = await runEngineFailover({ incident: alertAt });
    const report = buildReport({ run, audit: await store.readAudit(run.id), chain: NO_CHAIN, now: 0 });
    expect(typeof run.facts.signedAt).toBe('number');
    expect(report.recovery.window).toMatchObject({
      startAt: run.incident?.openedAt,
      endAt: run.facts.signedAt,
      endLabel: 'CN signing again',
      address: CN1_ADDRESS,
    });
    expect(report.recovery.ms).toBe(Number(run.facts.signedAt) - (run.incident?.openedAt ?? 0));
  });

  it('without an alert, measures from the first destructive step', async () => {
    const { store, run } = await runEngineFailover();
    const report = buildReport({ run, audit: await store.readAudit(run.id), chain: NO_CHAIN, now: 0 });
    const fence = run.steps.find((s) => s.id === 'fence-old-active');
    expect(report.incident).toBeUndefined();
    expect(report.recovery.window.startAt).toBe(fence?.startedAt);
  });

  it("lists the keys moved aside on both machines, and nothing of the keys' content", async () => {
    const { store, run } = await runEngineFailover({ incident: alertAt });
    const report = buildReport({ run, audit: await store.readAudit(run.id), chain: NO_CHAIN, now: 0 });
    expect(report.leftBehind).toEqual([
      {
        kind: 'key',
        where: 'cn1',
        text: '/var/kcnd/data/klay/nodekey moved aside to /var/kcnd/data/klay/nodekey.cellops-r1 (the fence)',
      },
      {
        kind: 'key',
        where: 'cn1s',
        text: 'its own bls-nodekey kept aside as /var/kcnd/data/klay/bls-nodekey.cellops-r1',
      },
      {
        kind: 'key',
        where: 'cn1s',
        text: 'its own nodekey kept aside as /var/kcnd/data/klay/nodekey.cellops-r1',
      },
    ]);
    expect(report.cleanupHint).toBeUndefined();
    const markdown = renderReportMarkdown(report);
    const slack = JSON.stringify(renderReport(report));
    for (const key of [CN1_KEY, CN1S_KEY]) {
      expect(markdown).not.toContain(key);
      expect(slack).not.toContain(key);
    }
  });

  it('renders every timeline entry in Markdown and fits Slack', async () => {
    const { store, run } = await runEngineFailover({ incident: alertAt });
    const report = buildReport({ run, audit: await store.readAudit(run.id), chain: NO_CHAIN, now: 0 });
    const markdown = renderReportMarkdown(report);
    const rows = markdown.split('\n').filter((l) => /^\| \d\d:\d\d:\d\d \|/.test(l));
    expect(rows).toHaveLength(report.timeline.length);
    expect(markdown).toContain(`- Requested by: ${REQUESTER}`);
    const rendered = renderReport(report);
    expect(rendered.blocks.length).toBeLessThanOrEqual(50);
    expect(JSON.stringify(rendered.blocks)).toContain(`<@${APPROVER}>`);
  });
});

describe('blocks the CN missed', () => {
  it('counts the blocks from the alert to the first block it signed again, read from a PN', async () => {
    const { store, run, config } = await runEngineFailover({ incident: alertAt });
    const signedBlock = Number(run.facts.signedBlock);
    const signedAt = Number(run.facts.signedAt);
    const openedAt = run.incident?.openedAt ?? 0;
    const outage = Math.floor(signedAt / 1000) - Math.ceil(openedAt / 1000);
    const rpc = new FakeNodeRpc();
    // Signing until the alert's condition began, none until signedBlock, then signing again.
    rpc.blocks.set(
      'pn1',
      chain(signedBlock + 10, signedAt + 10_000, 400, (n) => n < signedBlock - outage || n >= signedBlock),
    );
    const source = createReportSource({
      store,
      clock: new ManualClock(),
      chain: { config, rpc },
      pageBlocks: 50,
    });

    const report = await source.report(run.id);
    expect(report?.missed).toMatchObject({
      kind: 'counted',
      source: 'pn1',
      missed: outage,
      ranges: [`${signedBlock - outage}–${signedBlock - 1}`],
      truncated: false,
      open: false,
    });

    const bounded = await createReportSource({
      store,
      clock: new ManualClock(),
      chain: { config, rpc },
      maxBlocks: 20,
      pageBlocks: 50,
    }).report(run.id);
    expect(bounded?.missed).toMatchObject({ kind: 'counted', truncated: true, examined: 19, missed: 19 });
    expect(renderReportMarkdown(bounded!)).toContain('only the last 20 blocks were read');
  });

  it('says why when no PN gives blocks, and still reports the rest', async () => {
    const { store, run, config } = await runEngineFailover({ incident: alertAt });
    const rpc = new FakeNodeRpc();
    rpc.recentBlocks = () => Promise.reject(new Error('connect ECONNREFUSED'));
    const report = await createReportSource({
      store,
      clock: new ManualClock(),
      chain: { config, rpc },
    }).report(run.id);
    expect(report?.missed).toEqual({
      kind: 'unknown',
      reason: 'no PN gave the blocks (pn1: connect ECONNREFUSED; pn2: connect ECONNREFUSED)',
    });
    expect(report?.timeline.length).toBeGreaterThan(10);
    expect(await createReportSource({ store, clock: new ManualClock() }).report('nope')).toBeUndefined();
  });
});

describe('step targets', () => {
  it('are the hosts and EC2 calls of the plan text', () => {
    expect(
      stepTargets(
        'Run `sudo -n systemctl stop kcnd` on cn1 (10.0.1.11), then EC2 StopInstances i-1 and again on cn1 (10.0.1.11).',
      ),
    ).toEqual(['cn1 (10.0.1.11)', 'EC2 StopInstances']);
  });
});
