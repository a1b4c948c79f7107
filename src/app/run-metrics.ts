/**
 * Run metrics, as a RunObserver next to the presenter: told of every run event the engine of this process
 * emits, it keeps
 *
 * - `cellops_runs{state}`: the unfinished runs this process drives, by state (sum over replicas for the
 *   cell; a run taken over after a crash moves with its driver);
 * - `cellops_run_duration_seconds{runbook,outcome}`: creation to end, per finished run;
 * - `cellops_time_to_recover_seconds{runbook,outcome}`: the failover's own measure (the run's
 *   `timeToRecoverMs` fact), when it reported one;
 * - `cellops_step_duration_seconds{runbook,step,status}`: per finished step attempt;
 * - `cellops_approval_wait_seconds{runbook,step,outcome}`: from an approval request to its end
 *   (approved, aborted, expired or closed). The request's start is its expiry minus slack.approvalTimeout,
 *   so the figure holds whichever replica asked.
 *
 * Registered in the /metrics registry given; nothing here touches Redis or the network.
 */
import { Histogram, type Registry } from 'prom-client';
import type { Clock } from '../ports/clock.js';
import type { RunEvent, RunObserver, RunRecord, RunStatus } from '../runbooks/types.js';

/** The states `cellops_runs` reports (a finished run leaves the gauge). */
const UNFINISHED: readonly RunStatus[] = ['pending', 'running', 'waiting-approval', 'paused'];

export interface RunMetricsDeps {
  readonly registry: Registry;
  /** The `cellops_runs` gauge's setter (src/monitor/metrics.ts declares the gauge). */
  readonly setRunStates: (counts: Readonly<Record<string, number>>) => void;
  /** slack.approvalTimeout in ms. */
  readonly approvalTimeoutMs: number;
  readonly clock: Clock;
}

const seconds = (ms: number): number => Math.max(0, ms) / 1000;

export function createRunMetrics(deps: RunMetricsDeps): RunObserver {
  const { clock } = deps;
  const registers = [deps.registry];
  const runDuration = new Histogram({
    name: 'cellops_run_duration_seconds',
    help: 'Duration of finished runs, from creation to end',
    labelNames: ['runbook', 'outcome'],
    buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
    registers,
  });
  const timeToRecover = new Histogram({
    name: 'cellops_time_to_recover_seconds',
    help: 'Time to recover reported by failover runs (the standby or replacement signing again)',
    labelNames: ['runbook', 'outcome'],
    buckets: [5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers,
  });
  const stepDuration = new Histogram({
    name: 'cellops_step_duration_seconds',
    help: 'Duration of finished step attempts',
    labelNames: ['runbook', 'step', 'status'],
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers,
  });
  const approvalWait = new Histogram({
    name: 'cellops_approval_wait_seconds',
    help: 'Time from an approval request to its end, by how it ended',
    labelNames: ['runbook', 'step', 'outcome'],
    buckets: [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600],
    registers,
  });
  const driven = new Map<string, RunStatus>();

  const publishStates = (): void => {
    const counts: Record<string, number> = Object.fromEntries(UNFINISHED.map((s) => [s, 0]));
    for (const status of driven.values()) counts[status] = (counts[status] ?? 0) + 1;
    deps.setRunStates(counts);
  };

  const observeWait = (run: RunRecord, stepId: string, outcome: string, endedAt: number): void => {
    const step = run.steps.find((s) => s.id === stepId);
    if (step?.approvalExpiresAt === undefined) return;
    const requestedAt = step.approvalExpiresAt - deps.approvalTimeoutMs;
    approvalWait.observe({ runbook: run.runbook, step: stepId, outcome }, seconds(endedAt - requestedAt));
  };

  const observe = (run: RunRecord, event: RunEvent): void => {
    switch (event.type) {
      case 'step-finished': {
        const step = run.steps.find((s) => s.id === event.stepId);
        if (step?.startedAt !== undefined)
          stepDuration.observe(
            { runbook: run.runbook, step: step.id, status: event.status },
            seconds((step.endedAt ?? clock.now()) - step.startedAt),
          );
        return;
      }
      case 'approval-decided':
        if (event.final)
          observeWait(
            run,
            event.stepId,
            event.approval.decision === 'approve' ? 'approved' : 'aborted',
            event.approval.at,
          );
        return;
      case 'approval-expired':
        observeWait(run, event.stepId, 'expired', clock.now());
        return;
      case 'approval-closed':
        observeWait(run, event.stepId, 'closed', clock.now());
        return;
      case 'run-finished': {
        const labels = { runbook: run.runbook, outcome: event.status };
        runDuration.observe(labels, seconds((run.endedAt ?? clock.now()) - run.createdAt));
        const ttr = run.facts.timeToRecoverMs;
        if (typeof ttr === 'number') timeToRecover.observe(labels, seconds(ttr));
        return;
      }
      default:
        return;
    }
  };

  publishStates();
  return {
    onRunEvent: async (run, event) => {
      observe(run, event);
      const finished = event.type === 'run-finished' || !UNFINISHED.includes(run.status);
      const before = driven.get(run.id);
      if (finished) driven.delete(run.id);
      else driven.set(run.id, run.status);
      if (before !== driven.get(run.id)) publishStates();
    },
  };
}
