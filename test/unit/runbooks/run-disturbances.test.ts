import { describe, expect, it } from 'vitest';
import { failoverRunbook } from '../../../src/runbooks/failover.js';
import { runDisturbances } from '../../../src/runbooks/run-disturbances.js';
import type { RunRecord, RunStatus, StepStatus } from '../../../src/runbooks/types.js';
import { sandboxConfig } from '../../../src/sandbox/sim-cell-seed.js';

const config = sandboxConfig({ redisPrefix: 'test:' });

function standbyRun(status: RunStatus, steps: Record<string, StepStatus>): RunRecord {
  const ids = failoverRunbook.steps({ cn: 'cn1', force: false }, config).map((s) => s.id);
  return {
    id: 'r1',
    runbook: 'failover',
    runbookVersion: 1,
    params: { cn: 'cn1' },
    node: 'cn1',
    summary: 'failover cn1',
    requester: 'U0ALICE',
    dryRun: false,
    createdAt: 0,
    status,
    steps: ids.map((id) => ({
      id,
      title: id,
      description: '',
      destructive: true,
      kind: 'auto',
      status: steps[id] ?? 'pending',
      attempts: 0,
      output: [],
      approvals: [],
      approvalRound: 0,
    })),
    facts: {},
    lockKey: 'failover',
    thread: { channel: 'C1', ts: '1.2' },
  };
}

describe('runDisturbances', () => {
  it('spares nothing before a step that takes a node out has started', () => {
    const run = standbyRun('waiting-approval', {
      preflight: 'succeeded',
      'fence-old-active': 'waiting-approval',
    });
    expect([...runDisturbances(run, failoverRunbook, config).keys()]).toEqual([]);
  });

  it('spares the standby from its stop until the run ends, with the step and the run thread', () => {
    const run = standbyRun('waiting-approval', {
      preflight: 'succeeded',
      'fence-old-active': 'succeeded',
      'confirm-old-active-off': 'skipped',
      'stop-standby': 'succeeded',
      'replace-nodekey': 'waiting-approval',
    });
    const spared = runDisturbances(run, failoverRunbook, config);
    expect([...spared.keys()].sort()).toEqual(['cn1', 'cn1s']);
    expect(spared.get('cn1s')).toEqual({
      runId: 'r1',
      stepTitle: 'Stop kcnd on the standby',
      thread: { channel: 'C1', ts: '1.2' },
    });
  });

  it('spares nothing once the run is paused or over, or for a dry run', () => {
    const steps = { preflight: 'succeeded', 'stop-standby': 'succeeded' } as const;
    for (const status of ['paused', 'succeeded', 'failed', 'aborted'] as const) {
      expect(runDisturbances(standbyRun(status, steps), failoverRunbook, config).size).toBe(0);
    }
    const dry = { ...standbyRun('running', steps), dryRun: true };
    expect(runDisturbances(dry, failoverRunbook, config).size).toBe(0);
  });
});
