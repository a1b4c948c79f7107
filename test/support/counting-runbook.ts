/**
 * A runbook of counting steps for the engine's tests and benchmark. Each step's side effect is one
 * increment of a counter keyed by the step (in memory for unit tests, a Redis INCR across processes), and
 * its `verify` reads that counter, so "each side effect happened exactly once" is a counter equal to 1.
 * Hooks let a test hold a step before or after its side effect, make it fail, or make its check fail.
 */
import { z } from 'zod';
import type {
  RetryPolicy,
  RunbookDefinition,
  StepContext,
  StepDefinition,
} from '../../src/runbooks/types.js';

export interface Counter {
  incr(key: string): Promise<number>;
  get(key: string): Promise<number>;
}

export function memoryCounter(): Counter & { readonly counts: Map<string, number> } {
  const counts = new Map<string, number>();
  return {
    counts,
    incr: async (key) => {
      const next = (counts.get(key) ?? 0) + 1;
      counts.set(key, next);
      return next;
    },
    get: async (key) => counts.get(key) ?? 0,
  };
}

export interface CountingParams {
  readonly node: string;
}

type Ctx = StepContext<CountingParams>;

export interface CountingStep {
  readonly id: string;
  readonly destructive?: boolean;
  readonly kind?: 'auto' | 'manual';
  readonly readOnly?: boolean;
  readonly retry?: RetryPolicy;
  readonly timeoutMs?: number;
  /** Runs before the increment (e.g. waits to be killed or aborted); may throw to fail the attempt. */
  readonly before?: (ctx: Ctx, attempt: number) => Promise<void>;
  /** Runs after the increment. */
  readonly after?: (ctx: Ctx) => Promise<void>;
  /** `count` (default): the counter is at least 1; `false`: never holds; `none`: no verify. */
  readonly verify?: 'count' | 'false' | 'none';
  /** Declares an undo that records itself in `undone` (and throws when `undoFails`). */
  readonly undo?: boolean;
  readonly undoFails?: boolean;
  /** The step's `when`; absent means it always applies. */
  readonly when?: boolean;
  /** A line the step writes to its output. */
  readonly output?: string;
}

export interface CountingRunbookOptions {
  readonly steps: readonly CountingStep[];
  readonly counter: Counter;
  readonly id?: string;
  readonly version?: number;
  /** Undos record the step id here, in the order they ran. */
  readonly undone?: string[];
  /** Attempts per step (how often `run` was called), for retry tests. */
  readonly attempts?: Map<string, number>;
  readonly lockKey?: string;
}

export function countingRunbook(options: CountingRunbookOptions): RunbookDefinition<CountingParams> {
  const { counter } = options;
  const attempts = options.attempts ?? new Map<string, number>();
  const stepOf = (spec: CountingStep): StepDefinition<CountingParams> => ({
    id: spec.id,
    title: `Count ${spec.id}`,
    describe: ({ params }) => `increment the counter ${spec.id} for ${params.node}`,
    destructive: spec.destructive ?? false,
    ...(spec.kind ? { kind: spec.kind } : {}),
    ...(spec.readOnly ? { readOnly: true } : {}),
    ...(spec.retry ? { retry: spec.retry } : {}),
    ...(spec.timeoutMs === undefined ? {} : { timeoutMs: spec.timeoutMs }),
    ...(spec.when === undefined ? {} : { when: async () => spec.when ?? true }),
    run: async (ctx) => {
      const attempt = (attempts.get(spec.id) ?? 0) + 1;
      attempts.set(spec.id, attempt);
      await spec.before?.(ctx, attempt);
      ctx.signal.throwIfAborted();
      const count = await counter.incr(spec.id);
      ctx.setFact(`${spec.id}.count`, count);
      if (spec.output !== undefined) ctx.output(spec.output);
      await spec.after?.(ctx);
    },
    ...(spec.verify === 'none'
      ? {}
      : { verify: async () => (spec.verify === 'false' ? false : (await counter.get(spec.id)) >= 1) }),
    ...(spec.undo
      ? {
          undo: async () => {
            options.undone?.push(spec.id);
            if (spec.undoFails) throw new Error(`undo of ${spec.id} broke`);
          },
        }
      : {}),
  });
  return {
    id: options.id ?? 'counting',
    version: options.version ?? 1,
    title: 'Counting steps',
    params: z.object({ node: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a node name such as cn1') }),
    lockKey: () => options.lockKey ?? 'failover',
    node: (params) => params.node,
    summary: (params) => `counting on ${params.node}`,
    steps: () => options.steps.map(stepOf),
  };
}

/** Never resolves; rejects with the signal's reason once it aborts: a step that waits and honours aborts. */
export function waitForAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}
