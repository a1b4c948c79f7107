/**
 * The `value` of cellops's buttons, written when a message is rendered and read when a click comes back.
 * Values come back from Slack clients and are untrusted: this is the one place that parses them, strictly,
 * before anything looks at them. Run buttons carry `{runId, stepId, round}`; alert buttons `{node, incident}`.
 */
import { z } from 'zod';
import type { RunActionValue } from './action-ids.js';
import { LIMITS } from './kit.js';

/** The alert buttons' value (no secrets: clients can read it). */
export interface AlertActionValue {
  readonly node: string;
  readonly incident?: string | undefined;
}

const runActionSchema = z
  .object({
    runId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
    stepId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/),
    round: z.number().int().min(0).max(1_000_000),
  })
  .strict();

const alertActionSchema = z
  .object({
    node: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    incident: z.string().max(200).optional(),
  })
  .strip();

/** Why a value was refused: callers word their answer by it. */
export type ButtonValueProblem = 'too-long' | 'not-json' | 'invalid';

export type ButtonValueRead<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: ButtonValueProblem };

function readValue<T>(raw: string, schema: z.ZodType<T>): ButtonValueRead<T> {
  if (raw.length > LIMITS.buttonValue) return { ok: false, problem: 'too-long' };
  let json: unknown;
  try {
    json = JSON.parse(raw) as unknown;
  } catch {
    return { ok: false, problem: 'not-json' };
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, problem: 'invalid' };
}

export function readRunActionValue(raw: string): ButtonValueRead<RunActionValue> {
  return readValue(raw, runActionSchema);
}

export function readAlertActionValue(raw: string): ButtonValueRead<AlertActionValue> {
  return readValue(raw, alertActionSchema);
}

export function alertActionValue(node: string, incident: string): string {
  return JSON.stringify({ node, incident } satisfies AlertActionValue);
}

/** An alert button's value; undefined for anything that is not one of ours. */
export function parseAlertActionValue(raw: string): AlertActionValue | undefined {
  const read = readAlertActionValue(raw);
  return read.ok ? read.value : undefined;
}
