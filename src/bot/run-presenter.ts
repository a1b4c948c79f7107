/**
 * Shows runs in Slack: a RunObserver that posts the run's channel message and its thread, and edits them
 * as the run advances.
 *
 * - The engine must never wait on Slack: `onRunEvent` only queues work and returns.
 * - The posts of one run are serialized (a thread reads in order) and coalesced: the channel message is
 *   edited once per burst of events with the latest state, and a step's "started" post is dropped when
 *   its "finished" post is queued before it went out.
 * - Message refs (the run message, each approval request) live in Redis, so the replica that records a
 *   decision can edit an approval message another replica posted. The engine emits `approval-decided`
 *   once, on that replica, so each decision is exactly one chat.update of the approval message.
 */
import type { Redis } from 'ioredis';
import type { Chat, MessageRef } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { CellopsConfig } from '../config/config.js';
import type { RedisKeys } from '../infra/redis-keys.js';
import type { RunEvent, RunObserver, RunRecord } from '../runbooks/types.js';
import {
  renderApprovalDecided,
  renderApprovalRequest,
  renderPlan,
  renderRunMessage,
  renderRunNote,
  renderRunResult,
  renderStepFinished,
  renderStepStarted,
  type ApprovalView,
} from '../views/run.js';
import { mention, escapeText, type RenderedMessage } from '../views/kit.js';

/** Where message refs are kept so every replica finds them. */
export interface MessageRefStore {
  save(runId: string, field: string, ref: MessageRef): Promise<void>;
  read(runId: string, field: string): Promise<MessageRef | undefined>;
}

/** Refs in a Redis hash per run, kept `ttlDays` (default 30) after the last write. */
export function createRedisMessageRefStore(redis: Redis, keys: RedisKeys, ttlDays = 30): MessageRefStore {
  return {
    async save(runId, field, ref) {
      const key = keys.slackRefs(runId);
      await redis
        .multi()
        .hset(key, field, JSON.stringify(ref))
        .expire(key, ttlDays * 86_400)
        .exec();
    },
    async read(runId, field) {
      const raw = await redis.hget(keys.slackRefs(runId), field);
      return raw === null ? undefined : (JSON.parse(raw) as MessageRef);
    },
  };
}

/** Refs in process memory: for one-process setups (the sandbox) and unit tests. */
export function createMemoryMessageRefStore(): MessageRefStore {
  const refs = new Map<string, MessageRef>();
  return {
    save: async (runId, field, ref) => {
      refs.set(`${runId}|${field}`, ref);
    },
    read: async (runId, field) => refs.get(`${runId}|${field}`),
  };
}

export interface RunPresenterDeps {
  readonly chat: Chat;
  readonly refs: MessageRefStore;
  readonly config: CellopsConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Records where the run message is (Engine.setThread), so the lock holder can be linked. A function
   * rather than the engine itself because the engine is built with this presenter as its observer.
   */
  readonly recordThread?: (runId: string, ref: MessageRef) => Promise<void>;
  /** How long to wait for a ref another replica is storing right now. Default 3 s. */
  readonly refWaitMs?: number;
}

export interface RunPresenter extends RunObserver {
  /** Resolves when every queued post and edit has been sent (tests; graceful shutdown). */
  idle(): Promise<void>;
}

interface Task {
  readonly kind: 'thread' | 'step-started';
  readonly stepId?: string;
  readonly run: () => Promise<void>;
}

interface RunQueue {
  latest: RunRecord;
  tasks: Task[];
  runMessageDirty: boolean;
  drain: Promise<void> | undefined;
}

const RUN_FIELD = 'run';
const approvalField = (stepId: string, round: number) => `approval:${stepId}:${round}`;

function snapshot(run: RunRecord): RunRecord {
  // The engine may keep mutating its record; what we render is the state at the event.
  return structuredClone(run);
}

export function createRunPresenter(deps: RunPresenterDeps): RunPresenter {
  const { chat, refs, config, clock, logger } = deps;
  const channel = config.slack.channel;
  const refWaitMs = deps.refWaitMs ?? 3_000;
  const queues = new Map<string, RunQueue>();
  const localRefs = new Map<string, MessageRef>();
  /** Runs whose message this process posted, until the engine's record shows it knows the thread. */
  const threadUnconfirmed = new Map<string, MessageRef>();
  const view: ApprovalView = {
    approvers: config.slack.approvers,
    fourEyes: config.slack.fourEyes,
    approvalsNeeded: config.slack.approvals,
  };

  const saveRef = async (runId: string, field: string, ref: MessageRef): Promise<void> => {
    localRefs.set(`${runId}|${field}`, ref);
    await refs.save(runId, field, ref);
  };

  const readRef = async (runId: string, field: string): Promise<MessageRef | undefined> => {
    const local = localRefs.get(`${runId}|${field}`);
    if (local) return local;
    const ref = await refs.read(runId, field);
    if (ref) localRefs.set(`${runId}|${field}`, ref);
    return ref;
  };

  /** A ref posted by another replica may be a moment away from Redis; wait for it briefly. */
  const awaitRef = async (runId: string, field: string): Promise<MessageRef | undefined> => {
    const deadline = clock.now() + refWaitMs;
    for (;;) {
      const ref = await readRef(runId, field);
      if (ref || clock.now() >= deadline) return ref;
      await clock.sleep(100);
    }
  };

  const ensureRunMessage = async (run: RunRecord, wait: boolean): Promise<MessageRef> => {
    const existing = wait ? await awaitRef(run.id, RUN_FIELD) : await readRef(run.id, RUN_FIELD);
    if (existing) return existing;
    const ref = await chat.post({ channel, ...renderRunMessage(run, clock.now()) });
    await saveRef(run.id, RUN_FIELD, ref);
    threadUnconfirmed.set(run.id, ref);
    await recordThread(run.id, ref);
    return ref;
  };

  const recordThread = async (runId: string, ref: MessageRef): Promise<void> => {
    if (!deps.recordThread) return;
    await deps.recordThread(runId, ref).catch((error: unknown) => {
      logger.warn({ err: error, runId }, 'could not record the run thread');
    });
  };

  /**
   * The engine may not be driving the run yet when the run message is posted (run-started comes first),
   * and then the thread it records can be lost. Later events carry the engine's record: if it still has
   * no thread, record it again, now that the run is driven here.
   */
  const confirmThread = async (run: RunRecord): Promise<void> => {
    const ref = threadUnconfirmed.get(run.id);
    if (!ref) return;
    threadUnconfirmed.delete(run.id);
    if (run.thread?.ts !== ref.ts) await recordThread(run.id, ref);
  };

  const postInThread = async (run: RunRecord, rendered: RenderedMessage): Promise<MessageRef> => {
    const parent = await ensureRunMessage(run, true);
    return chat.post({ channel: parent.channel, threadTs: parent.ts, ...rendered });
  };

  /** Edits an approval message; falls back to a new thread post if its ref cannot be found. */
  const editApproval = async (run: RunRecord, stepId: string, rendered: RenderedMessage): Promise<void> => {
    const step = run.steps.find((s) => s.id === stepId);
    const ref = await awaitRef(run.id, approvalField(stepId, step?.approvalRound ?? 0));
    if (ref) {
      await chat.update(ref, rendered);
      return;
    }
    logger.warn({ runId: run.id, stepId }, 'approval message not found; posting the decision in the thread');
    await postInThread(run, rendered);
  };

  const tasksFor = (run: RunRecord, event: RunEvent): Task[] => {
    const thread = (render: () => RenderedMessage): Task => ({
      kind: 'thread',
      run: async () => {
        await postInThread(run, render());
      },
    });
    switch (event.type) {
      case 'run-started':
        return [
          {
            kind: 'thread',
            run: async () => {
              await ensureRunMessage(run, false);
              await postInThread(run, renderPlan(run.summary, run.steps, { dryRun: run.dryRun }));
            },
          },
        ];
      case 'step-started':
        return [
          {
            kind: 'step-started',
            stepId: event.stepId,
            run: async () => {
              await postInThread(run, renderStepStarted(run, event.stepId));
            },
          },
        ];
      case 'step-output':
        // Shown as an excerpt when the step finishes; posting every line would flood the thread.
        return [];
      case 'step-finished':
        return [thread(() => renderStepFinished(run, event.stepId, event.status))];
      case 'approval-requested':
        return [
          {
            kind: 'thread',
            run: async () => {
              const step = run.steps.find((s) => s.id === event.stepId);
              const ref = await postInThread(
                run,
                renderApprovalRequest(run, event.stepId, view, event.expiresAt),
              );
              await saveRef(run.id, approvalField(event.stepId, step?.approvalRound ?? 0), ref);
            },
          },
        ];
      case 'approval-decided':
        return [
          {
            kind: 'thread',
            run: async () => {
              const step = run.steps.find((s) => s.id === event.stepId);
              let rendered: RenderedMessage;
              if (event.approval.decision === 'abort') {
                rendered = renderApprovalDecided(run, event.stepId, { kind: 'aborted', by: event.approval });
              } else if (event.final) {
                const all = step?.approvals.filter((a) => a.decision === 'approve') ?? [];
                rendered = renderApprovalDecided(run, event.stepId, {
                  kind: 'approved',
                  by: event.approval,
                  all,
                });
              } else {
                rendered = renderApprovalRequest(
                  run,
                  event.stepId,
                  view,
                  step?.approvalExpiresAt ?? clock.now() + config.slack.approvalTimeoutMs,
                );
              }
              await editApproval(run, event.stepId, rendered);
            },
          },
        ];
      case 'approval-expired':
      case 'approval-closed': {
        const kind = event.type === 'approval-expired' ? 'expired' : 'closed';
        return [
          {
            kind: 'thread',
            run: async () => {
              await editApproval(
                run,
                event.stepId,
                renderApprovalDecided(run, event.stepId, { kind, at: clock.now() }),
              );
            },
          },
        ];
      }
      case 'run-paused':
        return [
          thread(() =>
            renderRunNote(
              `:double_vertical_bar: Paused: ${escapeText(event.reason)}. \`/cell resume ${escapeText(run.id)}\` continues; \`/cell abort ${escapeText(run.id)}\` stops it.`,
            ),
          ),
        ];
      case 'run-resumed':
        return [thread(() => renderRunNote(`:arrow_forward: Resumed by ${mention(event.user)}.`))];
      case 'run-finished':
        return [thread(() => renderRunResult(run, clock.now()))];
    }
  };

  const drain = async (runId: string, queue: RunQueue): Promise<void> => {
    for (;;) {
      const task = queue.tasks.shift();
      if (task) {
        try {
          await task.run();
        } catch (error) {
          logger.warn({ err: error, runId }, 'could not post a run update to Slack');
        }
        continue;
      }
      if (queue.runMessageDirty) {
        queue.runMessageDirty = false;
        try {
          const ref = await readRef(runId, RUN_FIELD);
          if (ref) await chat.update(ref, renderRunMessage(queue.latest, clock.now()));
        } catch (error) {
          logger.warn({ err: error, runId }, 'could not update the run message in Slack');
        }
        continue;
      }
      break;
    }
    queue.drain = undefined;
    queues.delete(runId);
    if (
      queue.latest.status === 'succeeded' ||
      queue.latest.status === 'failed' ||
      queue.latest.status === 'aborted'
    ) {
      threadUnconfirmed.delete(runId);
      for (const key of localRefs.keys()) if (key.startsWith(`${runId}|`)) localRefs.delete(key);
    }
  };

  return {
    onRunEvent(run: RunRecord, event: RunEvent): Promise<void> {
      const state = snapshot(run);
      let queue = queues.get(run.id);
      if (!queue) {
        queue = { latest: state, tasks: [], runMessageDirty: false, drain: undefined };
        queues.set(run.id, queue);
      }
      queue.latest = state;
      if (event.type === 'step-finished') {
        // Coalesce: a start not yet posted is superseded by the finish, which says everything.
        queue.tasks = queue.tasks.filter((t) => !(t.kind === 'step-started' && t.stepId === event.stepId));
      }
      if (event.type !== 'run-started' && threadUnconfirmed.has(run.id)) {
        queue.tasks.push({ kind: 'thread', run: () => confirmThread(state) });
      }
      queue.tasks.push(...tasksFor(state, event));
      // The run-started post shows the current state already; everything else changes the run message.
      if (event.type !== 'step-output' && event.type !== 'run-started') queue.runMessageDirty = true;
      if (!queue.drain) queue.drain = drain(run.id, queue);
      return Promise.resolve();
    },

    async idle() {
      while (queues.size > 0) {
        await Promise.all([...queues.values()].map((q) => q.drain ?? Promise.resolve()));
      }
    },
  };
}
