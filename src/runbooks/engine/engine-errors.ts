/**
 * Errors the engine raises on purpose, in the style of src/errors.ts (stable code, retryable flag, a
 * message that says what failed, where, and what to do next).
 */
import { CellopsError } from '../../errors.js';

/** A step ran without error but its post-condition (`verify`) did not hold. */
export class VerifyFailedError extends CellopsError {
  constructor(runId: string, stepId: string, title: string) {
    super(
      'verify_failed',
      `step ${stepId} (${title}) of run ${runId} ran, but its check afterwards did not hold; ` +
        'look at the step output and the host before resuming or starting again',
    );
  }
}

/** The reason a run's steps and waits stop when a person aborts it. */
export class RunAbortedError extends CellopsError {
  readonly user: string;
  constructor(runId: string, user: string) {
    super('run_aborted', `run ${runId} was aborted by <@${user}>`);
    this.user = user;
  }
}

/** The engine is closing, or another process took the run over: this process stops driving it. */
export class RunHandedOverError extends CellopsError {
  constructor(runId: string, reason: string) {
    super('run_handed_over', `this process stopped driving run ${runId}: ${reason}`, { retryable: true });
  }
}

/** start() or recover() was called after close(). */
export class EngineClosedError extends CellopsError {
  constructor() {
    super(
      'engine_closed',
      'the runbook engine is shutting down; try again on another replica or after restart',
      {
        retryable: true,
      },
    );
  }
}
