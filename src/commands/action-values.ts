/**
 * Button values as the handlers need them: parsed by src/views/action-values.ts, and a refused value
 * becomes an InputError that tells the clicker to use a current message.
 */
import { InputError } from '../errors.js';
import type { RunActionValue } from '../views/action-ids.js';
import {
  readAlertActionValue,
  readRunActionValue,
  type AlertActionValue,
  type ButtonValueRead,
} from '../views/action-values.js';

function orRefuse<T>(read: ButtonValueRead<T>, invalid: string): T {
  if (read.ok) return read.value;
  if (read.problem === 'too-long')
    throw new InputError('The button value is too long; use the buttons of a current message.');
  if (read.problem === 'not-json')
    throw new InputError('The button value is not valid; use the buttons of a current message.');
  throw new InputError(invalid);
}

export function requireRunActionValue(value: string): RunActionValue {
  return orRefuse(
    readRunActionValue(value),
    'The button value is not valid; use the buttons of a current message.',
  );
}

export function requireAlertActionValue(value: string): AlertActionValue {
  return orRefuse(
    readAlertActionValue(value),
    'The alert button value is not valid; use the buttons of a current alert.',
  );
}
