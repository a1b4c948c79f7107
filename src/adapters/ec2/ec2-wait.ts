/**
 * Waiting for an EC2 resource to reach a state, one way for every kind of resource: the SDK's waiter,
 * bounded by `timeoutMs` and the caller's abort signal. One Describe call goes first so that a permission
 * or region error surfaces at once instead of being retried by the waiter until the timeout.
 */
import type { waitUntilInstanceRunning } from '@aws-sdk/client-ec2';
import { CellopsError, ExternalError, StepTimeoutError } from '../../errors.js';
import type { WaitOptions } from '../../ports/cloud.js';
import type { Ec2Context } from './ec2-context.js';
import type { ResourceKind } from './ec2-resources.js';
import { ec2ErrorCode, isEc2NotFound, translateEc2Error } from './ec2-errors.js';

type WaiterParams = Parameters<typeof waitUntilInstanceRunning>[0];
/** An SDK waiter (waitUntilInstanceStopped, waitUntilSnapshotCompleted, ...). */
export type WaitUntil<I> = (params: WaiterParams, input: I) => Promise<unknown>;

/** Waits until the resource `id` of `kind` is `target` (a word for messages: 'stopped', 'in use', ...). */
export function waitFor<I, O>(
  ctx: Ec2Context,
  kind: ResourceKind<I, O>,
  id: string,
  target: string,
  waiter: WaitUntil<I>,
  options: WaitOptions,
): Promise<void> {
  return runWaiter(
    ctx,
    { action: kind.action, resource: `${kind.noun} ${id}`, target },
    waiter,
    kind.input(id),
    options,
    () => kind.describe(ctx.client, kind.input(id)),
  );
}

/**
 * Runs an SDK waiter within `options`. `precheck` is one plain Describe call: errors that no amount of
 * waiting fixes (permissions, credentials, region) are thrown at once; not-found is left to the waiter,
 * because a resource just created can take a moment to become visible.
 */
async function runWaiter<I>(
  ctx: Ec2Context,
  what: { action: string; resource: string; target: string },
  waiter: WaitUntil<I>,
  input: I,
  options: WaitOptions,
  precheck: () => Promise<unknown>,
): Promise<void> {
  options.signal?.throwIfAborted();
  const started = ctx.clock.now();
  try {
    await precheck();
  } catch (error) {
    if (!isEc2NotFound(error)) throw translateEc2Error(error, { ...what, region: await ctx.region() });
  }
  const maxWaitTime = Math.max(options.timeoutMs / 1000, 0.002);
  // The waiter requires minDelay < maxWaitTime; short timeouts poll proportionally faster.
  const minDelay = Math.min(ctx.delays.minSeconds, maxWaitTime / 4);
  const maxDelay = Math.max(minDelay, Math.min(ctx.delays.maxSeconds, maxWaitTime / 2));
  try {
    await waiter(
      {
        client: ctx.client,
        maxWaitTime,
        minDelay,
        maxDelay,
        ...(options.signal ? { abortSignal: options.signal } : {}),
      },
      input,
    );
    ctx.log.debug({ resource: what.resource, waitedMs: ctx.clock.now() - started }, `${what.target}`);
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw await waitFailure(ctx, what, options, error);
  }
}

/** The error to throw for a waiter that gave up, was aborted, saw a terminal state or failed outright. */
async function waitFailure(
  ctx: Ec2Context,
  what: { action: string; resource: string; target: string },
  options: WaitOptions,
  error: unknown,
): Promise<Error> {
  const name = ec2ErrorCode(error);
  const reg = await ctx.region();
  if (name === 'TimeoutError')
    return new StepTimeoutError(
      `${what.resource} in ${reg} was not ${what.target} after ${Math.round(options.timeoutMs / 1000)} s; ` +
        `check it in the EC2 console, then resume the run to wait again.`,
    );
  if (name === 'AbortError') return new CellopsError('aborted', `waiting for ${what.resource} was aborted`);
  if (error instanceof Error && error.message.startsWith('{'))
    return new ExternalError(
      'ec2_wait_failed',
      `${what.resource} in ${reg} reached a state from which it cannot become ${what.target}: ` +
        `${summarizeWaiterFailure(error.message)}. Inspect it in the EC2 console.`,
      { cause: error },
    );
  return translateEc2Error(error, { ...what, region: reg });
}

/** The waiter's failure message is a JSON dump of the last response; keep only the states it saw. */
function summarizeWaiterFailure(message: string): string {
  const states = [...message.matchAll(/"(?:State|Name)":"([a-z-]+)"/g)].map((m) => m[1]);
  const unique = [...new Set(states)];
  return unique.length > 0 ? `last state seen: ${unique.join(', ')}` : 'the waiter reported a failure';
}
