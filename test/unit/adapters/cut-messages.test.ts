/**
 * Adapter messages quote text a node or AWS sent, cut to a couple of hundred characters. They redact
 * before cutting: a key straddling the cut must not leave its first 32–63 characters in the message.
 */
import { describe, expect, it } from 'vitest';
import { consoleErrorLine } from '../../../src/adapters/rpc/console-output.js';
import { pagerDutyBody } from '../../../src/adapters/pager/pagerduty-pager.js';
import { opsgenieRequest } from '../../../src/adapters/pager/opsgenie-pager.js';
import { CommandFailedError } from '../../../src/runbooks/node-ops.js';
import { keepOnlyChaindata } from '../../../src/runbooks/snapshot-ops.js';
import { sh } from '../../../src/ports/shell-command.js';
import { FakeShell } from '../../fakes/fake-shell.js';

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

const HOST = { name: 'cn1', address: '10.0.0.1' };

describe('messages cut from a command that failed on a node', () => {
  it('keeps no part of a key that straddled the cut of stderr', () => {
    for (let at = 360; at <= 420; at++) {
      const stderr = `${'x'.repeat(at)}${KEY} more`;
      const error = new CommandFailedError(HOST, sh`sudo -n true`, {
        exitCode: 1,
        stdout: '',
        stderr,
        truncated: false,
        durationMs: 1,
      });
      expect(error.message, `key at ${at}`).not.toMatch(/[0-9a-f]{16}/);
    }
  });

  it('keeps no part of a key cut off the start of a privileged script’s output tail', async () => {
    for (let after = 380; after <= 420; after += 4) {
      const shell = new FakeShell().on('cellops-keep-chaindata', {
        exitCode: 1,
        stderr: `before ${KEY}${'y'.repeat(after)}`,
      });
      const failure = keepOnlyChaindata({ shell, commandTimeoutMs: 1_000 }, HOST, '/var/kcnd/data');
      await expect(failure, `key ${after} from the end`).rejects.toThrow(/failed with exit status 1/);
      await failure.catch((error: Error) => expect(error.message).not.toMatch(/[0-9a-f]{16}/));
    }
  });
});

describe('page titles cut to the pager’s limit', () => {
  it('keep no part of a key that straddled the cut', () => {
    for (let at = 1_000; at <= 1_030; at++) {
      const summary = `${'z'.repeat(at)}${KEY}`;
      const event = { action: 'trigger', key: 'k', summary, severity: 'critical', cell: 'c', at: 0 } as const;
      const body = pagerDutyBody(event, 'routing') as { payload: { summary: string } };
      expect(body.payload.summary, `key at ${at}`).not.toMatch(/[0-9a-f]{16}/);
      expect(body.payload.summary.length).toBeLessThanOrEqual(1_024);
      const opsgenie = opsgenieRequest({ ...event, summary: `${'z'.repeat(at - 900)}${KEY}` });
      expect(JSON.stringify(opsgenie.body), `opsgenie, key at ${at - 900}`).not.toMatch(/[0-9a-f]{16}/);
    }
  });
});
