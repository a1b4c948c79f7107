import { UsageError } from '../../src/commands/parse.js';

/** The UsageError `fn` throws; fails the test when it throws nothing or something else. */
export function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error('expected a UsageError');
}
