/**
 * Slash-command and button handlers as plain functions: text and user in, a reply out. They never import
 * Bolt, so they run the same under Bolt, in the sandbox console and in unit tests. Authorization to start
 * comes from the engine's policy; who may approve is decided by the engine itself (Engine.decide).
 */
import type { CellopsConfig } from '../config/config.js';
import type { Chat } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import type { Engine, RunIncident, RunRecord, RunStatus } from '../runbooks/types.js';
import type { IncidentStore } from '../monitor/incidents.js';
import type { ReportSource } from '../report/gather-report.js';
import type { MonitorControl } from '../monitor/types.js';
import type { ApprovalPolicy, PolicyVerdict } from '../runbooks/approval-policy.js';
import { LockBusyError } from '../locks/types.js';
import { CellopsError, InputError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import { renderError } from '../views/render-error.js';
import { clockTime, escapeKeepingMentions, escapeText, mention, type RenderedMessage } from '../views/kit.js';
import {
  renderHelp,
  renderLockBusy,
  renderNotice,
  renderRoles,
  renderRunsList,
  renderStatus,
  renderUsageError,
} from '../views/cell.js';
import { ALERT_MUTE_MS } from '../views/alert.js';
import {
  parseCell,
  parseFailover,
  UsageError,
  type CellCommand,
  type DrillKind,
  type FailoverCommand,
} from './parse.js';
import { requireAlertActionValue, requireRunActionValue } from './action-values.js';
import { helpUsage } from './usage.js';
import { openIncidentOf, reportCommand } from './report-command.js';
import type { Reply } from './reply.js';
import { currentRoles, type CellState } from '../ports/cell-state.js';
import { claimedMachines, refuseTakenMachines } from '../runbooks/set-roles.js';

/** The part of the engine's approval policy commands need: who may start, abort, resume and mute. */
export type CommandPolicy = Pick<ApprovalPolicy, 'canStart' | 'canAbort'>;

export interface CommandDeps {
  readonly config: CellopsConfig;
  readonly engine: Engine;
  readonly policy: CommandPolicy;
  /** What `/cell roles` reads; absent: the command says it is not available. */
  readonly state?: CellState | undefined;
  /** Absent while the monitor is not running: commands that need it say so. */
  readonly monitor?: MonitorControl | undefined;
  /** `post` is needed for `/cell report` to post in a run's thread. */
  readonly chat: Pick<Chat, 'permalink'> & Partial<Pick<Chat, 'post'>>;
  /** Builds run reports for `/cell report`; absent: the command says reports are not available. */
  readonly reports?: ReportSource;
  /** Open alerts, so that a failover keeps the alert it answers (for its report). */
  readonly incidents?: Pick<IncidentStore, 'get'>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Enables `/cell drill failover <cn>`. */
  readonly sandbox?: boolean;
  /** Runbook ids the engine has; a command whose runbook is missing says so plainly. Default: assume all. */
  readonly runbooks?: readonly string[];
  /** Runs a drill (sandbox only): a failover (the CN fails first) or a planned switchover. */
  readonly drill?: (cn: string, user: string, what: DrillKind) => Promise<RunRecord>;
  /** How long the alert's Mute button mutes. Default 30 minutes. */
  readonly alertMuteMs?: number;
  /** Counts dry runs per user (config runs.dryRunsPerMinute). Absent: not limited. */
  readonly dryRunLimiter?: RateLimiter;
}

export interface CommandRequest {
  /** Slack user id (U…/W…) of who typed the command or clicked. */
  readonly user: string;
  readonly channel: string;
  readonly text: string;
}

export interface RunActionRequest {
  readonly user: string;
  /** `cleanup`: the Clean up button of a failed run's result, which starts the `cleanup` runbook. */
  readonly decision: 'approve' | 'abort' | 'cleanup';
  /** The button's value, untrusted. */
  readonly value: string;
}

export interface AlertActionRequest {
  readonly user: string;
  readonly channel: string;
  readonly action: 'startFailover' | 'mute' | 'acknowledge';
  readonly value: string;
}

export interface CommandHandlers {
  failover(request: CommandRequest): Promise<Reply>;
  cell(request: CommandRequest): Promise<Reply>;
  /** Approve / Abort. Undefined: nothing to tell the clicker (the approval message itself changes). */
  runAction(request: RunActionRequest): Promise<Reply | undefined>;
  alertAction(request: AlertActionRequest): Promise<Reply>;
}

const ACTIVE: readonly RunStatus[] = ['pending', 'running', 'waiting-approval', 'paused'];

function ephemeral(rendered: RenderedMessage): Reply {
  return { text: rendered.text, blocks: rendered.blocks, ephemeral: true };
}

function visible(rendered: RenderedMessage): Reply {
  return { text: rendered.text, blocks: rendered.blocks, ephemeral: false };
}

function notice(mrkdwn: string): Reply {
  return ephemeral(renderNotice(mrkdwn));
}

/** A refusal that says why; the policy's reason may carry user mentions, which stay mentions. */
function refusal(verdict: Extract<PolicyVerdict, { allowed: false }>): Reply {
  return notice(`:no_entry: Not allowed: ${escapeKeepingMentions(verdict.reason)}. Nothing ran.`);
}
const NO_MONITOR = 'Monitoring is not running, so there is nothing to mute, unmute or acknowledge.';

const channelLink = (config: CellopsConfig): string => `<#${config.slack.channel}>`;

/** The reply for any error: lock contention gets the holder and a link; the rest goes to renderError. */
async function failure(deps: CommandDeps, error: unknown, context: Record<string, unknown>): Promise<Reply> {
  const { logger } = deps;
  if (error instanceof UsageError) return ephemeral(renderUsageError(error.message, error.usage, error.hint));
  if (error instanceof LockBusyError) {
    let permalink: string | undefined;
    if (error.holder?.thread) {
      permalink = await deps.chat.permalink(error.holder.thread).catch((e: unknown) => {
        logger.warn({ err: e }, 'could not get the permalink of the lock holder thread');
        return undefined;
      });
    }
    return ephemeral(renderLockBusy(error.holder, permalink, deps.clock.now()));
  }
  if (!(error instanceof CellopsError)) logger.error({ ...context, err: error }, 'command failed');
  else logger.info({ ...context, code: error.code, err: error }, 'command refused');
  return ephemeral(renderError(error));
}

async function startRunbook(
  deps: CommandDeps,
  runbook: string,
  params: Record<string, unknown>,
  user: string,
  dryRun: boolean,
  incident?: RunIncident,
): Promise<Reply> {
  if (deps.runbooks !== undefined && !deps.runbooks.includes(runbook)) {
    return notice(
      `The \`${escapeText(runbook)}\` runbook is not available in this version of cellops yet; nothing ran.`,
    );
  }
  const verdict = await deps.policy.canStart(user);
  if (!verdict.allowed) return refusal(verdict);
  if (dryRun && deps.dryRunLimiter) {
    // A dry run touches every node over SSH and RPC; a loop of them must not load the cell.
    const rate = await deps.dryRunLimiter.take(user);
    if (!rate.allowed)
      return notice(
        `:hourglass: Too many dry runs: at most ${rate.limit} a minute per person. Try again in ${formatDuration(Math.max(1_000, rate.retryAfterMs))}; nothing ran.`,
      );
  }
  const run = await deps.engine.start({
    runbook,
    params,
    requester: user,
    dryRun,
    ...(incident === undefined ? {} : { incident }),
  });
  const what = `${dryRun ? 'Dry run of ' : ''}*${escapeText(run.summary)}*`;
  return notice(
    `:arrow_forward: Started ${what} (run \`${escapeText(run.id)}\`). Follow it in ${channelLink(deps.config)}${dryRun ? ': the plan and the preflight results are posted there; nothing is changed' : ''}.`,
  );
}

async function startFailover(deps: CommandDeps, command: FailoverCommand, user: string): Promise<Reply> {
  return startRunbook(
    deps,
    'failover',
    {
      cn: command.cn,
      ...(command.mode === undefined ? {} : { mode: command.mode }),
      force: command.force,
      ...(command.switchover ? { switchover: true } : {}),
    },
    user,
    command.dryRun,
    await openIncidentOf(deps.incidents, command.cn),
  );
}

async function findRun(engine: Engine, runId: string): Promise<RunRecord> {
  const run = await engine.get(runId);
  if (run === undefined) throw new InputError(`There is no run ${runId} (see /cell runs).`);
  return run;
}

/** Runbooks whose runs leave tagged cloud resources that `cleanup` can remove. */
const CLEANABLE = ['failover', 'image'];

/** Starts the `cleanup` runbook for a run that has ended (it has its own approval before removing anything). */
async function startCleanup(deps: CommandDeps, runId: string, user: string): Promise<Reply> {
  const run = await findRun(deps.engine, runId);
  if (!CLEANABLE.includes(run.runbook))
    throw new InputError(
      `Run ${runId} is a ${run.runbook} run, which creates no cloud resources; nothing ran.`,
    );
  if (ACTIVE.includes(run.status))
    throw new InputError(
      `Run ${runId} is ${run.status}: clean up only after it has ended (\`/cell abort ${runId}\` first); nothing ran.`,
    );
  return startRunbook(deps, 'cleanup', { runId: run.id, cn: run.node }, user, false);
}

async function runCell(deps: CommandDeps, command: CellCommand, user: string): Promise<Reply> {
  const { config, engine, policy, clock } = deps;
  switch (command.kind) {
    case 'help':
      return ephemeral(renderHelp(helpUsage({ sandbox: deps.sandbox === true })));
    case 'status': {
      const [view, runs] = await Promise.all([
        deps.monitor ? deps.monitor.status() : Promise.resolve(undefined),
        engine.list(20),
      ]);
      return ephemeral(
        renderStatus({
          cell: config.cell,
          view,
          inventory: Object.values(config.nodes).map((n) => ({ name: n.name, role: n.role })),
          activeRuns: runs.filter((r) => ACTIVE.includes(r.status)),
          now: clock.now(),
        }),
      );
    }
    case 'runs':
      return ephemeral(renderRunsList(await engine.list(15), clock.now()));
    case 'abort': {
      const verdict = await policy.canAbort(user, await findRun(engine, command.runId));
      if (!verdict.allowed) return refusal(verdict);
      const run = await engine.abort(command.runId, user);
      return visible(
        renderNotice(
          `:octagonal_sign: ${mention(user)} aborted *${escapeText(run.summary)}* (run \`${escapeText(run.id)}\`): it stops before its next step.`,
        ),
      );
    }
    case 'resume': {
      const verdict = await policy.canAbort(user, await findRun(engine, command.runId));
      if (!verdict.allowed) return refusal(verdict);
      const run = await engine.resume(command.runId, user);
      return visible(
        renderNotice(
          `:arrow_forward: ${mention(user)} resumed *${escapeText(run.summary)}* (run \`${escapeText(run.id)}\`).`,
        ),
      );
    }
    case 'report': {
      const outcome = await reportCommand(deps, command.runId, user);
      return outcome.kind === 'posted' ? ephemeral(outcome.notice) : visible(outcome.report);
    }
    case 'mute': {
      if (!deps.monitor) return notice(NO_MONITOR);
      const verdict = await policy.canStart(user);
      if (!verdict.allowed) return refusal(verdict);
      const { until } = await deps.monitor.mute(command.node, command.durationMs, user);
      return visible(
        renderNotice(
          `:mute: ${mention(user)} muted alerts for *${escapeText(command.node)}* for ${formatDuration(command.durationMs)} (until ${clockTime(until)}).`,
        ),
      );
    }
    case 'unmute': {
      if (!deps.monitor) return notice(NO_MONITOR);
      const verdict = await policy.canStart(user);
      if (!verdict.allowed) return refusal(verdict);
      await deps.monitor.unmute(command.node, user);
      return visible(
        renderNotice(`:loud_sound: ${mention(user)} unmuted alerts for *${escapeText(command.node)}*.`),
      );
    }
    case 'cleanup':
      return startCleanup(deps, command.runId, user);
    case 'backup-nodekey':
    case 'image':
    case 'check':
      return startRunbook(deps, command.kind, { cn: command.cn }, user, false);
    case 'roles': {
      if (!deps.state) return notice('The cell state is not available here; nothing to show.');
      const [current, history] = await Promise.all([
        currentRoles(deps.state, config, command.cn),
        deps.state.roleHistory(command.cn, 20),
      ]);
      return ephemeral(renderRoles({ cn: command.cn, current, history }));
    }
    case 'set-roles': {
      if (!deps.state) return notice('The cell state is not available here; nothing was recorded.');
      const claim = {
        cn: command.cn,
        servedBy: command.servedBy,
        ...(command.standby === undefined ? {} : { standby: command.standby }),
      };
      // Refused here with a clear answer before any run starts; the run checks again under the lock.
      claimedMachines(config, claim);
      await refuseTakenMachines(config, deps.state, claim);
      return startRunbook(deps, 'set-roles', { ...claim, by: user }, user, false);
    }
    case 'rebuild-standby':
      return startRunbook(
        deps,
        'rebuild-standby',
        { cn: command.cn, ...(command.host === undefined ? {} : { host: command.host }) },
        user,
        false,
      );
    case 'drill': {
      if (!deps.drill) return notice('Drills are not available here; nothing ran.');
      const verdict = await policy.canStart(user);
      if (!verdict.allowed) return refusal(verdict);
      const run = await deps.drill(command.cn, user, command.what);
      return notice(
        `:stopwatch: Drill started: *${escapeText(run.summary)}* (run \`${escapeText(run.id)}\`). Follow it in ${channelLink(config)}.`,
      );
    }
  }
}

function describeDecision(by: { user: string; decision: string; at: number }): string {
  return `${by.decision === 'abort' ? 'aborted' : 'approved'} by ${mention(by.user)} at ${clockTime(by.at)}`;
}

async function runAction(deps: CommandDeps, request: RunActionRequest): Promise<Reply | undefined> {
  const { config, engine } = deps;
  try {
    const value = requireRunActionValue(request.value);
    if (request.decision === 'cleanup') return await startCleanup(deps, value.runId, request.user);
    const outcome = await engine.decide(
      value.runId,
      value.stepId,
      request.user,
      request.decision,
      value.round,
    );
    switch (outcome.kind) {
      case 'recorded': {
        if (outcome.final || request.decision === 'abort') return undefined;
        const step = outcome.run.steps.find((s) => s.id === value.stepId);
        const given = step ? step.approvals.filter((a) => a.decision === 'approve').length : 0;
        const missing = Math.max(1, (step?.approvalsRequired ?? config.slack.approvals) - given);
        return notice(
          `Your approval is recorded; ${missing} more approval${missing === 1 ? ' is' : 's are'} needed.`,
        );
      }
      case 'already-decided':
        return notice(`Already decided: ${describeDecision(outcome.by)}. Nothing changed.`);
      case 'expired':
        return notice(
          `This approval request expired at ${clockTime(outcome.expiredAt)}; your approval was not recorded and the step does not run. The run pauses: \`/cell resume ${escapeText(value.runId)}\` asks again.`,
        );
      case 'not-waiting': {
        const run = await engine.get(value.runId);
        const step = run?.steps.find((s) => s.id === value.stepId);
        const last = step?.approvals.at(-1);
        if (last) return notice(`Already decided: ${describeDecision(last)}. Nothing changed.`);
        return notice(
          `Nothing to decide: ${run ? `the run is ${run.status}` : 'the run is unknown'}${step ? ` and this step is ${step.status}` : ''}. Nothing changed.`,
        );
      }
    }
  } catch (error) {
    return failure(deps, error, { action: request.decision, user: request.user });
  }
}

async function alertAction(deps: CommandDeps, request: AlertActionRequest): Promise<Reply> {
  const { config, policy } = deps;
  try {
    const value = requireAlertActionValue(request.value);
    if (!Object.hasOwn(config.nodes, value.node)) throw new InputError(`Unknown node "${value.node}".`);
    switch (request.action) {
      case 'startFailover':
        return await startFailover(deps, parseFailover(value.node, config), request.user);
      case 'mute': {
        if (!deps.monitor) return notice(NO_MONITOR);
        const verdict = await policy.canStart(request.user);
        if (!verdict.allowed) return refusal(verdict);
        const ms = deps.alertMuteMs ?? ALERT_MUTE_MS;
        const { until } = await deps.monitor.mute(value.node, ms, request.user);
        return ephemeral(
          renderNotice(
            `:mute: ${mention(request.user)} muted alerts for *${escapeText(value.node)}* for ${formatDuration(ms)} (until ${clockTime(until)}).`,
          ),
        );
      }
      case 'acknowledge': {
        if (!deps.monitor) return notice(NO_MONITOR);
        const verdict = await policy.canStart(request.user);
        if (!verdict.allowed) return refusal(verdict);
        await deps.monitor.acknowledge(value.node, request.user);
        return ephemeral(
          renderNotice(
            `:eyes: ${mention(request.user)} acknowledged the alert for *${escapeText(value.node)}*.`,
          ),
        );
      }
    }
  } catch (error) {
    return failure(deps, error, { action: request.action, user: request.user });
  }
}

export function createCommandHandlers(deps: CommandDeps): CommandHandlers {
  const { config } = deps;
  return {
    async failover(request) {
      try {
        return await startFailover(deps, parseFailover(request.text, config), request.user);
      } catch (error) {
        return failure(deps, error, { command: '/failover', user: request.user });
      }
    },

    async cell(request) {
      try {
        return await runCell(
          deps,
          parseCell(request.text, config, { sandbox: deps.sandbox === true }),
          request.user,
        );
      } catch (error) {
        return failure(deps, error, { command: '/cell', user: request.user });
      }
    },

    runAction: (request) => runAction(deps, request),
    alertAction: (request) => alertAction(deps, request),
  };
}
