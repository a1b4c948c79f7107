/** Builders for configuration tests: the documented example, changed by key, and the problems it yields. */
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

export const EXAMPLE = readFileSync(new URL('../../cellops.example.yaml', import.meta.url), 'utf8');

// The YAML document is untyped by nature; the tests poke at it by key.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RawDoc = Record<string, any>;

/** The example with `change` applied to its parsed document, as YAML text again. */
export function withChange(change: (doc: RawDoc) => void): string {
  const doc = parse(EXAMPLE) as RawDoc;
  change(doc);
  return stringify(doc);
}

/** Every problem parseConfigText reports for `text` (none: an empty list). */
export function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'cellops.yaml');
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}
