/**
 * `/cell drill failover <cn>` and `/cell drill switchover <cn>` (sandbox only, README §Commands): a whole
 * standby failover or a planned switchover, rehearsed on the simulated cell, from wherever the recorded
 * roles put the CN now. For a failover, when the machine serving the CN is healthy the drill first stops
 * its kcnd — the failure being rehearsed — so the run's preflight sees a real failure rather than a forced
 * switchover; a switchover needs both machines healthy and breaks nothing. Then it starts the ordinary
 * failover run, and approves each approval request as the cell's approvers other than the requester
 * (four-eyes holds), through Engine.decide, so the run thread and the audit stream show who approved and
 * when, exactly as for people clicking. The report at the end is the run's own result, time per step
 * included: the same report a real run gives.
 */
import type { CellopsConfig } from '../config/config.js';
import { InputError } from '../errors.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Engine, RunEvent, RunObserver, RunRecord } from '../runbooks/types.js';
import type { UsergroupDirectory } from '../runbooks/approval-policy.js';
import type { CellState } from '../ports/cell-state.js';
import type { SimCell } from './sim-hosts.js';
import { applyFault } from './faults.js';
import { standbyLayout } from '../runbooks/cell-nodes.js';
import type { DrillKind } from '../commands/parse.js';

export interface DrillDeps {
  readonly config: CellopsConfig;
  /** Resolved lazily: the engine is built with the drill's observer. */
  readonly engine: () => Engine;
  readonly state: CellState;
  readonly directory: UsergroupDirectory;
  /** The simulation as it is now (the sandbox can re-seed it). */
  readonly sim: () => SimCell;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long an approval request stays up before the drill's approver clicks. Default 1.5 s. */
  readonly approvalDelayMs?: number;
  /** Called when a drill run ends, with the finished run. */
  readonly onFinished?: (run: RunRecord, drill: { injected?: string }) => Promise<void>;
}

export interface Drills extends RunObserver {
  /** Starts a drill of `cn`'s failover (default) or planned switchover, requested by `user`. */
  start(cn: string, user: string, what?: DrillKind): Promise<RunRecord>;
  isDrill(runId: string): boolean;
  /** Stops pending approvals (shutdown). */
  close(): void;
}

interface DrillRun {
  readonly approvers: readonly string[];
  readonly injected?: string;
  next: number;
}

interface PendingRequest {
  readonly stepId: string;
  readonly round: number;
}

export function createDrills(deps: DrillDeps): Drills {
  const { config, clock } = deps;
  const logger = deps.logger.child({ component: 'drill' });
  const delayMs = deps.approvalDelayMs ?? 1_500;
  const drills = new Map<string, DrillRun>();
  // An approval request of a run not yet known as a drill (start() has not returned yet).
  const early = new Map<string, PendingRequest[]>();
  const controller = new AbortController();

  const approversFor = async (requester: string): Promise<string[]> => {
    const people = new Set(config.slack.approvers.users);
    for (const group of config.slack.approvers.usergroups) {
      for (const member of await deps.directory.usergroupMembers(group)) people.add(member);
    }
    if (config.slack.fourEyes) people.delete(requester);
    return [...people];
  };

  const approve = (runId: string, request: PendingRequest): void => {
    const drill = drills.get(runId);
    if (!drill) return;
    const needed = config.slack.approvals;
    const who = Array.from(
      { length: needed },
      (_, i) => drill.approvers[(drill.next + i) % drill.approvers.length],
    );
    drill.next += 1;
    void (async () => {
      try {
        await clock.sleep(delayMs, controller.signal);
        for (const user of who) {
          if (user === undefined) continue;
          const outcome = await deps.engine().decide(runId, request.stepId, user, 'approve', request.round);
          if (outcome.kind !== 'recorded') {
            logger.info(
              { runId, stepId: request.stepId, outcome: outcome.kind },
              'drill approval not needed',
            );
            return;
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        logger.warn({ runId, stepId: request.stepId, err: error }, 'drill approval failed');
      }
    })();
  };

  return {
    isDrill: (runId) => drills.has(runId),

    async start(cn, user, what = 'failover') {
      const node = config.nodes[cn];
      if (node?.role !== 'cn') throw new InputError(`"${cn}" is not a CN of this cell.`);
      if (node.failover?.mode !== 'standby') {
        throw new InputError(
          `Drills rehearse the standby failover and switchover; ${cn} fails over in ${node.failover?.mode ?? 'no'} mode. Try /cell drill ${what} on a CN with a standby.`,
        );
      }
      const layout = await standbyLayout(config, deps.state, cn);
      if (layout.standby === undefined) {
        throw new InputError(
          `${cn} is served by ${layout.active} and has no standby ready: make one with /cell rebuild-standby ${cn}, or press "Reset cell" to start over.`,
        );
      }
      const approvers = await approversFor(user);
      if (approvers.length < config.slack.approvals) {
        throw new InputError(
          `A drill needs ${config.slack.approvals} approver(s) other than you; the cell has ${approvers.length}.`,
        );
      }
      const sim = deps.sim();
      const host = sim.host(layout.active);
      let injected: string | undefined;
      if (what === 'failover' && host.isRunning() && !host.isStalled() && !host.isolated) {
        injected = applyFault(sim, layout.active, 'stop').text;
      }
      let run: RunRecord;
      try {
        run = await deps.engine().start({
          runbook: 'failover',
          params: { cn, force: false, ...(what === 'switchover' ? { switchover: true } : {}) },
          requester: user,
        });
      } catch (error) {
        // Nothing was rehearsed: put the node back as it was.
        if (injected !== undefined) applyFault(sim, layout.active, 'heal');
        throw error;
      }
      drills.set(run.id, { approvers, next: 0, ...(injected === undefined ? {} : { injected }) });
      for (const request of early.get(run.id) ?? []) approve(run.id, request);
      early.delete(run.id);
      logger.info({ runId: run.id, cn, requester: user, approvers }, 'drill started');
      return run;
    },

    async onRunEvent(run: RunRecord, event: RunEvent) {
      if (event.type === 'approval-requested') {
        const step = run.steps.find((s) => s.id === event.stepId);
        const request = { stepId: event.stepId, round: step?.approvalRound ?? 0 };
        if (drills.has(run.id)) approve(run.id, request);
        else if (early.size < 100) early.set(run.id, [...(early.get(run.id) ?? []), request]);
        return;
      }
      if (event.type === 'run-finished') {
        early.delete(run.id);
        const drill = drills.get(run.id);
        if (!drill) return;
        drills.delete(run.id);
        await deps.onFinished?.(run, drill.injected === undefined ? {} : { injected: drill.injected });
      }
    },

    close() {
      controller.abort();
    },
  };
}
