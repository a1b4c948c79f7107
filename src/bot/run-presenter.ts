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
import { z } from 'zod';
import { createRedisQuarantine } from '../infra/redis-quarantine.js';
import type { Chat, MessageRef } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { CellopsConfig } from '../config/config.js';
import type { RedisKeys } from '../infra/redis-keys.js';
import type { RunEvent, RunObserver, RunRecord } from '../runbooks/types.js';
import { renderRunMessage } from '../views/run.js';
import type { RenderedMessage } from '../views/kit.js';
import { tasksFor, type Task, type ThreadPoster } from './run-thread-tasks.js';

/** Where message refs are kept so every replica finds them. */
export interface MessageRefStore {
  save(runId: string, field: string, ref: MessageRef): Promise<void>;
  read(runId: string, field: string): Promise<MessageRef | undefined>;
}

/** A Slack message ref as stored: a channel id and a message ts, nothing else is followed. */
const messageRefSchema: z.ZodType<MessageRef> = z.looseObject({
  channel: z.string().regex(/^[CGD][A-Z0-9]{2,}$/, 'must be a Slack channel id'),
  ts: z.string().regex(/^[0-9]{1,12}\.[0-9]{1,8}$/, 'must be a Slack message ts'),
});

/** Refs in a Redis hash per run, kept `ttlDays` (default 30) after the last write; read back checked. */
export function createRedisMessageRefStore(
  redis: Redis,
  keys: RedisKeys,
  ttlDays = 30,
  logger?: Logger,
): MessageRefStore {
  const quarantine = createRedisQuarantine({ redis, keys, logger });
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
      const key = keys.slackRefs(runId);
      return quarantine.field(key, field, await redis.hget(key, field), messageRefSchema);
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

/** The refs this process has seen, in front of the shared store; forgotten when a run ends. */
interface RefCache {
  save(runId: string, field: string, ref: MessageRef): Promise<void>;
  read(runId: string, field: string): Promise<MessageRef | undefined>;
  /** A ref posted by another replica may be a moment away from Redis; wait for it briefly. */
  await(runId: string, field: string): Promise<MessageRef | undefined>;
  forget(runId: string): void;
}

function createRefCache(refs: MessageRefStore, clock: Clock, waitMs: number): RefCache {
  const local = new Map<string, MessageRef>();
  const read = async (runId: string, field: string): Promise<MessageRef | undefined> => {
    const known = local.get(`${runId}|${field}`);
    if (known) return known;
    const ref = await refs.read(runId, field);
    if (ref) local.set(`${runId}|${field}`, ref);
    return ref;
  };
  return {
    async save(runId, field, ref) {
      local.set(`${runId}|${field}`, ref);
      await refs.save(runId, field, ref);
    },
    read,
    async await(runId, field) {
      const deadline = clock.now() + waitMs;
      for (;;) {
        const ref = await read(runId, field);
        if (ref || clock.now() >= deadline) return ref;
        await clock.sleep(100);
      }
    },
    forget(runId) {
      for (const key of local.keys()) if (key.startsWith(`${runId}|`)) local.delete(key);
    },
  };
}

/** Posts and edits a run's messages; `threadUnconfirmed` holds runs whose thread the engine may not know. */
function createThreadPoster(
  deps: RunPresenterDeps,
  cache: RefCache,
  threadUnconfirmed: Map<string, MessageRef>,
): ThreadPoster & { recordThread(runId: string, ref: MessageRef): Promise<void> } {
  const { chat, config, clock, logger } = deps;
  const channel = config.slack.channel;

  const recordThread = async (runId: string, ref: MessageRef): Promise<void> => {
    if (!deps.recordThread) return;
    await deps.recordThread(runId, ref).catch((error: unknown) => {
      logger.warn({ err: error, runId }, 'could not record the run thread');
    });
  };

  const ensureRunMessage = async (run: RunRecord, wait: boolean): Promise<MessageRef> => {
    const existing = wait ? await cache.await(run.id, RUN_FIELD) : await cache.read(run.id, RUN_FIELD);
    if (existing) return existing;
    const ref = await chat.post({ channel, ...renderRunMessage(run, clock.now()) });
    await cache.save(run.id, RUN_FIELD, ref);
    threadUnconfirmed.set(run.id, ref);
    await recordThread(run.id, ref);
    return ref;
  };

  const postInThread = async (run: RunRecord, rendered: RenderedMessage): Promise<MessageRef> => {
    const parent = await ensureRunMessage(run, true);
    return chat.post({ channel: parent.channel, threadTs: parent.ts, ...rendered });
  };

  const roundOf = (run: RunRecord, stepId: string): number =>
    run.steps.find((s) => s.id === stepId)?.approvalRound ?? 0;

  return {
    config,
    clock,
    view: {
      approvers: config.slack.approvers,
      fourEyes: config.slack.fourEyes,
      approvalsNeeded: config.slack.approvals,
    },
    recordThread,
    ensureRunMessage,
    postInThread,
    /** Edits an approval message; falls back to a new thread post if its ref cannot be found. */
    async editApproval(run, stepId, rendered) {
      const ref = await cache.await(run.id, approvalField(stepId, roundOf(run, stepId)));
      if (ref) {
        await chat.update(ref, rendered);
        return;
      }
      logger.warn(
        { runId: run.id, stepId },
        'approval message not found; posting the decision in the thread',
      );
      await postInThread(run, rendered);
    },
    async saveApprovalRef(run, stepId, ref) {
      await cache.save(run.id, approvalField(stepId, roundOf(run, stepId)), ref);
    },
  };
}

export function createRunPresenter(deps: RunPresenterDeps): RunPresenter {
  const { chat, clock, logger } = deps;
  const queues = new Map<string, RunQueue>();
  const cache = createRefCache(deps.refs, clock, deps.refWaitMs ?? 3_000);
  /** Runs whose message this process posted, until the engine's record shows it knows the thread. */
  const threadUnconfirmed = new Map<string, MessageRef>();
  const poster = createThreadPoster(deps, cache, threadUnconfirmed);

  /**
   * The engine may not be driving the run yet when the run message is posted (run-started comes first),
   * and then the thread it records can be lost. Later events carry the engine's record: if it still has
   * no thread, record it again, now that the run is driven here.
   */
  const confirmThread = async (run: RunRecord): Promise<void> => {
    const ref = threadUnconfirmed.get(run.id);
    if (!ref) return;
    threadUnconfirmed.delete(run.id);
    if (run.thread?.ts !== ref.ts) await poster.recordThread(run.id, ref);
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
          const ref = await cache.read(runId, RUN_FIELD);
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
      cache.forget(runId);
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
      queue.tasks.push(...tasksFor(poster, state, event));
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
