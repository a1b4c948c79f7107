/**
 * Button values come back from Slack clients and are untrusted: they are parsed strictly here before
 * anything looks at them. Run buttons carry `{runId, stepId, round}`; alert buttons `{node, incident}`.
 */
import { z } from 'zod';
import { InputError } from '../errors.js';
import type { RunActionValue } from '../bot/action-ids.js';

const runActionValue = z
  .object({
    runId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
    stepId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/),
    round: z.number().int().min(0).max(1_000_000),
  })
  .strict();

const alertActionValue = z
  .object({
    node: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    incident: z.string().max(200).optional(),
  })
  .strip();

function json(value: string): unknown {
  if (value.length > 2_000)
    throw new InputError('The button value is too long; use the buttons of a current message.');
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw new InputError('The button value is not valid; use the buttons of a current message.');
  }
}

export function parseRunActionValue(value: string): RunActionValue {
  const parsed = runActionValue.safeParse(json(value));
  if (!parsed.success)
    throw new InputError('The button value is not valid; use the buttons of a current message.');
  return parsed.data;
}

export interface AlertActionValue {
  readonly node: string;
  readonly incident?: string | undefined;
}

export function parseAlertActionValue(value: string): AlertActionValue {
  const parsed = alertActionValue.safeParse(json(value));
  if (!parsed.success)
    throw new InputError('The alert button value is not valid; use the buttons of a current alert.');
  return parsed.data;
}
