/**
 * Drives one run from where its record stands to its end (README §The life of a run). The engine (engine.ts)
 * starts a driver for a new run, and for a run taken over from a process that died.
 *
 * The record is the checkpoint: it is saved (only while this process holds the run's owner lease) after
 * every state change, and events go to the observer after the save. Anything unexpected (Redis gone, a
 * bug) ends the driver without touching the record; its owner lease then lapses and recover() resumes
 * the run from the last checkpoint, here or in another replica.
 *
 * This file is the top-level loop; the driver's state is one DriverContext (driver-context.ts, which also
 * says what its stop, abort and lock signals mean) handed to the modules doing the work: lease-keeper.ts
 * (owner lease, run lock, saves), step-execution.ts, approval-wait.ts, run-pause.ts and run-ending.ts.
 */
import { describeError } from '../../errors.js';
import type { ControlRequest } from './run-store.js';
import {
  type DriverContext,
  type DriverDeps,
  type DriveStart,
  abortRequested,
  createDriverContext,
  flushBackground,
  markAborted,
  throwIfStopped,
  wake,
} from './driver-context.js';
import { RunHandedOverError } from './engine-errors.js';
import { fenced, keepLeases, releaseOwnerLease, save } from './lease-keeper.js';
import { isStepDone } from './run-record.js';
import { endAborted, finish, resumeEnding } from './run-ending.js';
import { pauseForLock, pausedWait } from './run-pause.js';
import { driveStep } from './step-execution.js';

export interface RunDrive {
  readonly runId: string;
  /** Settles when the driver stops: the run ended, the engine closed, or something failed (logged). */
  readonly done: Promise<void>;
  /** Something changed in the store (a decision, an abort or resume request): look again now. */
  wake(): void;
  /** A person aborted the run: stop work in progress and end it. */
  abort(request: ControlRequest): void;
  /** Stop driving and leave the record for another process (`handOver`: release the owner lease). */
  stop(reason: string, handOver: boolean): void;
  setThread(thread: { channel: string; ts: string }): Promise<void>;
}

/** Driver errors in a row, with no save in between, after which it gives up and leaves the run to recover(). */
const MAX_FAILURES_WITHOUT_PROGRESS = 30;

export function driveRun(deps: DriverDeps, start: DriveStart): RunDrive {
  const ctx = createDriverContext(deps, start);
  const { run } = ctx;
  let handOver = false;

  // An approval recorded by an earlier driver (one that died between the approval and the step's start)
  // was given for that moment, which may be hours ago: a destructive step is asked for again.
  for (const step of run.steps) if (step.status === 'approved') step.status = 'pending';

  const done = main(ctx, () => handOver);

  return {
    runId: run.id,
    done,
    wake: () => wake(ctx),
    abort: (request) => {
      markAborted(ctx, request);
      wake(ctx);
    },
    stop: (reason, release) => {
      handOver = release;
      ctx.stopCtl.abort(new RunHandedOverError(run.id, reason));
    },
    setThread: async (thread) => {
      run.thread = thread;
      await save(ctx);
      if (ctx.lease) await ctx.lock.setThread(ctx.lease, thread);
    },
  };
}

async function loop(ctx: DriverContext): Promise<void> {
  const { run } = ctx;
  if (await resumeEnding(ctx)) return;
  for (;;) {
    throwIfStopped(ctx);
    if (run.status === 'paused') {
      if ((await pausedWait(ctx)) === 'ended') return;
      continue;
    }
    // Both checks go to Redis together: one round trip before every step.
    const [aborting, held] = await Promise.all([abortRequested(ctx), fenced(ctx)]);
    if (aborting) {
      await endAborted(ctx);
      return;
    }
    const index = run.steps.findIndex((s) => !isStepDone(s.status));
    if (index < 0) {
      await finish(ctx, 'succeeded');
      return;
    }
    if (!held) {
      await pauseForLock(ctx);
      continue;
    }
    if ((await driveStep(ctx, index)) === 'ended') return;
  }
}

/**
 * Redis out for a moment (a restart, a failover) fails whatever the driver was doing. Giving up then
 * would leave the run to recover() once the owner lease lapses, and to nobody if Redis came back empty.
 * The state in memory is ahead of the record, so the loop starts again from it: every step is resumed by
 * its status as after a crash (an interrupted step by its verify, or a fresh approval). The heartbeat
 * still stops the driver once the owner lease may have lapsed; errors with no save in between stop it
 * after a while too, so that a bug does not spin.
 */
async function loopThroughErrors(ctx: DriverContext): Promise<void> {
  let failures = 0;
  let savesAtFailure = -1;
  for (;;) {
    try {
      await loop(ctx);
      return;
    } catch (error) {
      if (ctx.stopCtl.signal.aborted) throw error;
      failures = ctx.saves === savesAtFailure ? failures + 1 : 1;
      savesAtFailure = ctx.saves;
      if (failures > MAX_FAILURES_WITHOUT_PROGRESS) throw error;
      ctx.logger.warn(
        { err: error, failures },
        'driving the run failed (is Redis reachable?); trying again from the state in memory',
      );
      await ctx.clock.sleep(ctx.timings.pollMs, ctx.stopCtl.signal);
    }
  }
}

/** Keeps the leases while the loop runs; `handOver` tells, once stopped, whether to release the owner lease. */
async function main(ctx: DriverContext, handOver: () => boolean): Promise<void> {
  const { stopCtl, logger } = ctx;
  const beat = new AbortController();
  const beating = keepLeases(ctx, AbortSignal.any([beat.signal, stopCtl.signal]));
  try {
    await loopThroughErrors(ctx);
  } catch (error) {
    if (stopCtl.signal.aborted) {
      logger.info({ reason: describeError(stopCtl.signal.reason) }, 'stopped driving the run');
    } else {
      logger.error(
        { err: error },
        'driving the run failed; its record stays as last saved and recover() resumes it once the owner lease lapses',
      );
    }
  } finally {
    beat.abort();
    await beating;
    await flushBackground(ctx);
    if (stopCtl.signal.aborted && handOver()) await releaseOwnerLease(ctx);
  }
}
