/**
 * Facts that reach EC2 or SSH (ids, addresses), read back with their shape checked. A run's facts live in
 * Redis between steps and across a crash, so a fact is input like any other: one that is not the shape
 * cellops records stops the run here, before any call is made with it.
 */
import { SHAPES, type ShapeName } from '../ports/cloud-shapes.js';
import { CellopsError, SafetyGateError } from '../errors.js';
import type { Fact, PlanContext } from './types.js';

type FactReader = Pick<PlanContext<unknown>, 'fact'> & { readonly runId?: string };

/** The fact when recorded, checked against its shape; undefined when not recorded yet. */
export function factOf(ctx: FactReader, key: string, shape: ShapeName): string | undefined {
  const value = ctx.fact<Fact>(key);
  if (value === undefined || value === null) return undefined;
  const expected = SHAPES[shape];
  if (typeof value !== 'string' || !expected.test(value))
    throw new SafetyGateError(
      `the recorded fact ${key}${ctx.runId === undefined ? '' : ` of run ${ctx.runId}`} is not ${expected.what}; ` +
        'the run record was changed outside cellops — check the cell by hand, then abort the run',
    );
  return value;
}

/** A fact an earlier step must have recorded, checked against its shape. */
export function requireFactOf(ctx: FactReader, key: string, shape: ShapeName): string {
  const value = factOf(ctx, key, shape);
  if (value === undefined)
    throw new CellopsError(
      'missing_fact',
      `run ${ctx.runId ?? '?'} has no recorded ${key}; run the preflight again`,
    );
  return value;
}

/** For plan texts: the fact when it is well-formed, else nothing (a plan never throws). */
export function peekFactOf(ctx: FactReader, key: string, shape: ShapeName): string | undefined {
  const value = ctx.fact<Fact>(key);
  return typeof value === 'string' && SHAPES[shape].test(value) ? value : undefined;
}
