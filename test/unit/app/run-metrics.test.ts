import { describe, expect, it } from 'vitest';
import { createRunMetrics } from '../../../src/app/run-metrics.js';
import { createMonitorMetrics } from '../../../src/monitor/metrics.js';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { APPROVER_A, runRecord, stepRecord } from '../../support/bot-fixtures.js';

const TIMEOUT_MS = 15 * 60_000;

function setup() {
  const clock = new ManualClock();
  const metrics = createMonitorMetrics();
  const observer = createRunMetrics({
    registry: metrics.registry,
    setRunStates: (counts) => metrics.setRunStates(counts),
    approvalTimeoutMs: TIMEOUT_MS,
    clock,
  });
  return { clock, metrics, observer };
}

/** The value of one sample line of the Prometheus text, e.g. `cellops_runs{state="running"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('run metrics', () => {
  it('counts the unfinished runs this process drives by state, and drops finished ones', async () => {
    const { metrics, observer } = setup();
    expect(sample(await metrics.render(), 'cellops_runs{state="running"}')).toBe(0);
    const a = runRecord({ id: 'r-a', status: 'running' });
    const b = runRecord({ id: 'r-b', status: 'running' });
    await observer.onRunEvent(a, { type: 'run-started' });
    await observer.onRunEvent(b, { type: 'run-started' });
    await observer.onRunEvent(
      { ...b, status: 'waiting-approval' },
      {
        type: 'approval-requested',
        stepId: 'fence',
        expiresAt: 0,
      },
    );
    let text = await metrics.render();
    expect(sample(text, 'cellops_runs{state="running"}')).toBe(1);
    expect(sample(text, 'cellops_runs{state="waiting-approval"}')).toBe(1);
    await observer.onRunEvent({ ...a, status: 'succeeded' }, { type: 'run-finished', status: 'succeeded' });
    text = await metrics.render();
    expect(sample(text, 'cellops_runs{state="running"}')).toBe(0);
    expect(sample(text, 'cellops_runs{state="succeeded"}')).toBeUndefined();
  });

  it('observes run duration and time to recover by runbook and outcome, step durations and approval waits', async () => {
    const { clock, metrics, observer } = setup();
    const created = clock.now();
    const requestedAt = created + 20_000;
    const decidedAt = requestedAt + 90_000;
    const run: RunRecord = runRecord({
      createdAt: created,
      status: 'succeeded',
      endedAt: created + 400_000,
      facts: { timeToRecoverMs: 45_000 },
      steps: [
        stepRecord({ id: 'preflight', status: 'succeeded', startedAt: created, endedAt: created + 2_000 }),
        stepRecord({
          id: 'fence',
          destructive: true,
          status: 'approved',
          approvalExpiresAt: requestedAt + TIMEOUT_MS,
          approvals: [{ user: APPROVER_A, decision: 'approve', at: decidedAt }],
        }),
      ],
    });
    await observer.onRunEvent(run, { type: 'step-finished', stepId: 'preflight', status: 'succeeded' });
    await observer.onRunEvent(run, {
      type: 'approval-decided',
      stepId: 'fence',
      approval: { user: APPROVER_A, decision: 'approve', at: decidedAt },
      final: true,
    });
    await observer.onRunEvent(run, { type: 'run-finished', status: 'succeeded' });
    const text = await metrics.render();
    const labels = 'runbook="failover",outcome="succeeded"';
    expect(sample(text, `cellops_run_duration_seconds_sum{${labels}}`)).toBe(400);
    expect(sample(text, `cellops_run_duration_seconds_count{${labels}}`)).toBe(1);
    expect(sample(text, `cellops_time_to_recover_seconds_sum{${labels}}`)).toBe(45);
    expect(
      sample(
        text,
        'cellops_step_duration_seconds_sum{runbook="failover",step="preflight",status="succeeded"}',
      ),
    ).toBe(2);
    expect(
      sample(text, 'cellops_approval_wait_seconds_sum{runbook="failover",step="fence",outcome="approved"}'),
    ).toBe(90);
  });

  it('observes an expired approval with its wait up to now', async () => {
    const { clock, metrics, observer } = setup();
    const run = runRecord({
      steps: [stepRecord({ id: 'fence', approvalExpiresAt: clock.now() })],
    });
    await observer.onRunEvent(run, { type: 'approval-expired', stepId: 'fence' });
    expect(
      sample(
        await metrics.render(),
        'cellops_approval_wait_seconds_sum{runbook="failover",step="fence",outcome="expired"}',
      ),
    ).toBe(TIMEOUT_MS / 1000);
  });
});
