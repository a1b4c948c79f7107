/**
 * When a cloud runbook fails midway, operators need to know what it created and left behind: resources
 * are never deleted automatically, and every one carries the run's tag (RUN_ID_TAG). Shared by the
 * snapshot failover and the image runbook.
 */
import { RUN_ID_TAG } from '../ports/cloud.js';
import { describeError } from '../errors.js';
import type { StepContext, StepDefinition } from './types.js';

/**
 * Lists what the run left, writes that line to the step's output and appends it to the error's message,
 * then rethrows the error (its class and code are kept for the engine).
 */
export async function rethrowListingLeftovers<P>(ctx: StepContext<P>, error: unknown): Promise<never> {
  let line: string;
  try {
    const left = await ctx.ports.cloud.findTagged(ctx.runId);
    line =
      left.length === 0
        ? `This run has left no cloud resources (nothing tagged ${RUN_ID_TAG}=${ctx.runId}).`
        : `Resources this run left (tagged ${RUN_ID_TAG}=${ctx.runId}; not deleted automatically): ${left
            .map((r) => `${r.kind} ${r.id}${r.state ? ` (${r.state})` : ''}`)
            .join(', ')}.`;
  } catch (listError) {
    line = `Could not list the resources tagged ${RUN_ID_TAG}=${ctx.runId}: ${describeError(listError)}`;
  }
  ctx.output(line);
  if (error instanceof Error) error.message = `${error.message}\n${line}`;
  throw error;
}

/**
 * Wraps a step so that its failure lists the cloud resources the run has left, in the step's output and in
 * the error's message.
 */
export function listingLeftovers<P>(step: StepDefinition<P>): StepDefinition<P> {
  return {
    ...step,
    run: async (ctx) => {
      try {
        await step.run(ctx);
      } catch (error) {
        await rethrowListingLeftovers(ctx, error);
      }
    },
  };
}
