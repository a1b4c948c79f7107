/**
 * Adapter messages quote text a node or AWS sent, cut to a couple of hundred characters. They redact
 * before cutting: a key straddling the cut must not leave its first 32–63 characters in the message.
 */
import { describe, expect, it } from 'vitest';
import { consoleErrorLine } from '../../../src/adapters/rpc/console-output.js';

const KEY = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

describe('messages cut from node output', () => {
  it('never keeps part of a key that straddled the cut', () => {
    for (let at = 140; at <= 200; at++) {
      const line = consoleErrorLine('', `fatal: ${'x'.repeat(at - 7)}${KEY} more`);
      expect(line, `key at ${at}`).not.toMatch(/[0-9a-f]{16}/);
      expect(line.length).toBeLessThanOrEqual(201);
    }
  });
});
