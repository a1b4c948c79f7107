import { describe, expect, it } from 'vitest';
import {
  renderApprovalDecided,
  renderApprovalRequest,
  renderPlan,
  renderRunMessage,
  renderRunResult,
  renderStepFinished,
  renderStepStarted,
} from '../../../src/views/run.js';
import {
  renderHelp,
  renderLockBusy,
  renderRunsList,
  renderStatus,
  renderUsageError,
} from '../../../src/views/cell.js';
import { button, cutText, escapeText, fitBlocks, section } from '../../../src/views/kit.js';
import { renderError } from '../../../src/views/render-error.js';
import { RUN_ACTIONS } from '../../../src/views/action-ids.js';
import { helpUsage } from '../../../src/commands/usage.js';
import { CellopsError, InputError, NotAuthorizedError } from '../../../src/errors.js';
import type { Block } from '../../../src/ports/chat.js';
import { blockLimitProblems } from '../../support/block-limits.js';
import {
  APPROVER_A,
  APPROVER_B,
  OPERATOR,
  runRecord,
  stepRecord,
  testConfig,
} from '../../support/bot-fixtures.js';

const config = testConfig();
const view = { approvers: config.slack.approvers, fourEyes: true, approvalsNeeded: 1 };
const NOW = Date.UTC(2026, 10, 26, 12, 4, 12);
const NODEKEY = 'a'.repeat(64);

function allText(blocks: readonly Block[]): string {
  return JSON.stringify(blocks);
}

function actionsBlock(blocks: readonly Block[]): Record<string, unknown> | undefined {
  return blocks.find((b) => b.type === 'actions');
}

describe('Block Kit primitives', () => {
  it('escapes &, < and > in user-supplied text', () => {
    expect(escapeText('a <b> & <!channel>')).toBe('a &lt;b&gt; &amp; &lt;!channel&gt;');
  });

  it('cuts a section text over 3,000 characters and says so', () => {
    const block = section('x'.repeat(10_000)) as { text: { text: string } };
    expect(block.text.text.length).toBeLessThanOrEqual(3_000);
    expect(block.text.text).toMatch(/cut: \d+ more characters not shown/);
    expect(cutText('short', 3_000)).toBe('short');
  });

  it('keeps a message within 50 blocks and says how many were left out', () => {
    const blocks = fitBlocks(Array.from({ length: 120 }, (_, i) => section(`line ${i}`)));
    expect(blocks).toHaveLength(50);
    expect(allText(blocks.slice(-1))).toContain('71 more blocks not shown');
  });

  it('refuses a button value over 2,000 characters instead of cutting it', () => {
    expect(() => button({ actionId: 'a', text: 'A', value: 'v'.repeat(2_001) })).toThrow(RangeError);
  });
});

describe('run renderers', () => {
  it('shows title, node, mode, requester, status and elapsed in the run message', () => {
    const rendered = renderRunMessage(runRecord(), NOW);
    const text = allText(rendered.blocks);
    expect(text).toContain('failover cn1 (standby → cn1s)');
    expect(text).toContain('*Node*\\ncn1');
    expect(text).toContain('*Mode*\\nstandby');
    expect(text).toContain(`<@${OPERATOR}>`);
    expect(text).toContain('running');
    expect(text).toContain('*Elapsed*\\n4m12s');
    expect(blockLimitProblems(rendered)).toEqual([]);
  });

  it('renders a plan of 200 long steps within the limits', () => {
    const steps = Array.from({ length: 200 }, (_, i) => ({
      id: `s${i}`,
      title: `Step <${i}>`,
      description: 'run `x` '.repeat(1_000),
      destructive: i % 2 === 0,
    }));
    const rendered = renderPlan('failover cn1', steps, { dryRun: true });
    expect(blockLimitProblems(rendered)).toEqual([]);
    expect(allText(rendered.blocks)).toContain('Step &lt;0&gt;');
    expect(allText(rendered.blocks)).toContain('more blocks not shown');
  });

  it('shows a finished step with its duration and a redacted, cut excerpt of its output', () => {
    const run = runRecord({
      steps: [
        stepRecord({
          id: 'copy',
          title: 'Copy the nodekey',
          status: 'succeeded',
          startedAt: NOW - 3_000,
          endedAt: NOW,
          output: [`key is ${NODEKEY}`, ...Array.from({ length: 2_000 }, (_, i) => `line ${i} <tag>`)],
        }),
      ],
    });
    const rendered = renderStepFinished(run, 'copy', 'succeeded');
    const text = allText(rendered.blocks);
    expect(text).toContain('*Copy the nodekey* in 3s');
    expect(text).not.toContain(NODEKEY);
    expect(text).toContain('line 1999 &lt;tag&gt;');
    expect(text).toContain('output cut: the first');
    expect(blockLimitProblems(rendered)).toEqual([]);
  });

  it('redacts a secret from a step that failed', () => {
    const run = runRecord({
      steps: [stepRecord({ id: 'x', status: 'failed', error: `bad key 0x${NODEKEY}` })],
    });
    const text = allText(renderStepFinished(run, 'x', 'failed').blocks);
    expect(text).not.toContain(NODEKEY);
    expect(text).toContain('[redacted]');
  });

  it('announces a step start with its position', () => {
    expect(allText(renderStepStarted(runRecord(), 'fence').blocks)).toContain(
      '*Fence the old active* started (step 2/2)',
    );
  });

  it('asks for approval with the plain-words description, approvers, expiry and two buttons', () => {
    const run = runRecord({
      status: 'waiting-approval',
      steps: [
        stepRecord({
          id: 'fence',
          title: 'Fence',
          description: 'run `sudo -n systemctl stop kcnd` on cn1 10.0.1.11',
          destructive: true,
          status: 'waiting-approval',
          approvalRound: 2,
        }),
      ],
    });
    const rendered = renderApprovalRequest(run, 'fence', view, Date.UTC(2026, 10, 26, 12, 15, 0));
    const text = allText(rendered.blocks);
    expect(text).toContain('run `sudo -n systemctl stop kcnd` on cn1 10.0.1.11');
    expect(text).toContain(`<@${APPROVER_A}>, <@${APPROVER_B}>, <!subteam^S0ONCALL>`);
    expect(text).toContain(`not <@${OPERATOR}>, who started the run`);
    expect(text).toContain('expires at 12:15:00 UTC');
    const buttons = actionsBlock(rendered.blocks)?.elements as Record<string, unknown>[];
    expect(buttons.map((b) => [b.action_id, (b.text as { text: string }).text, b.style])).toEqual([
      [RUN_ACTIONS.approve, 'Approve', 'primary'],
      [RUN_ACTIONS.abort, 'Abort', 'danger'],
    ]);
    expect(buttons[0]?.confirm).toBeDefined();
    expect(JSON.parse(String(buttons[0]?.value))).toEqual({ runId: run.id, stepId: 'fence', round: 2 });
    expect(blockLimitProblems(rendered)).toEqual([]);
  });

  it('keeps an approval request within the limits whatever the description', () => {
    const run = runRecord({
      steps: [stepRecord({ id: 'x'.repeat(100), title: 'T'.repeat(500), description: '<&>'.repeat(5_000) })],
    });
    const rendered = renderApprovalRequest(run, 'x'.repeat(100), view, NOW);
    expect(blockLimitProblems(rendered)).toEqual([]);
    expect(allText(rendered.blocks)).not.toMatch(/<&>/);
  });

  it('replaces the buttons by who approved and when', () => {
    const run = runRecord();
    const rendered = renderApprovalDecided(run, 'fence', {
      kind: 'approved',
      by: { user: APPROVER_A, decision: 'approve', at: Date.UTC(2026, 10, 26, 12, 3, 4) },
    });
    expect(actionsBlock(rendered.blocks)).toBeUndefined();
    expect(allText(rendered.blocks)).toContain(`Approved by <@${APPROVER_A}> at 12:03:04 UTC`);
    expect(rendered.text).toContain('Approved by');
  });

  it('shows an aborted or expired approval without buttons', () => {
    const run = runRecord();
    const aborted = renderApprovalDecided(run, 'fence', {
      kind: 'aborted',
      by: { user: APPROVER_B, decision: 'abort', at: NOW },
    });
    expect(allText(aborted.blocks)).toContain(`Aborted by <@${APPROVER_B}> at 12:04:12 UTC`);
    const expired = renderApprovalDecided(run, 'fence', { kind: 'expired', at: NOW });
    expect(allText(expired.blocks)).toContain('Expired at 12:04:12 UTC');
    expect(allText(expired.blocks)).toContain('/cell resume r-abc123');
    expect(actionsBlock(expired.blocks)).toBeUndefined();
  });

  it('reports the result with the time to recover', () => {
    const run = runRecord({ status: 'succeeded', endedAt: NOW, facts: { timeToRecoverMs: 252_000 } });
    const text = allText(renderRunResult(run, NOW).blocks);
    expect(text).toContain('succeeded* in 4m12s');
    expect(text).toContain('Time to recover: *4m12s*');
  });
});

describe('cell renderers', () => {
  it('renders the status table from the monitor view, escaping node errors', () => {
    const rendered = renderStatus({
      cell: 'test-cell',
      view: {
        referenceHeight: 1000,
        at: NOW,
        nodes: [
          {
            node: 'cn1',
            role: 'cn',
            height: 980,
            lag: 20,
            cnPeers: 3,
            condition: 'lagging',
            since: NOW - 60_000,
            lastError: '<boom>',
          },
          { node: 'pn1', role: 'pn', height: 1000, lag: 0, cnPeers: 4, condition: 'healthy' },
        ],
      },
      inventory: [],
      activeRuns: [runRecord()],
      now: NOW,
    });
    const text = allText(rendered.blocks);
    expect(text).toContain('reference height #1000');
    expect(text).toMatch(/cn1 +cn +lagging +980 +20 +3/);
    expect(text).toContain('&lt;boom&gt;');
    expect(text).toContain('*In progress:*');
    expect(blockLimitProblems(rendered)).toEqual([]);
  });

  it('says plainly when monitoring is not running', () => {
    const rendered = renderStatus({
      cell: 'c',
      view: undefined,
      inventory: [{ name: 'cn1', role: 'cn' }],
      activeRuns: [],
      now: NOW,
    });
    expect(allText(rendered.blocks)).toContain('monitoring is not running');
  });

  it('lists many runs within the limits', () => {
    const runs = Array.from({ length: 300 }, (_, i) => runRecord({ id: `r${i}`, summary: 'x'.repeat(200) }));
    expect(blockLimitProblems(renderRunsList(runs, NOW))).toEqual([]);
  });

  it('names holder, node, runbook, since when and links the thread when the lock is busy', () => {
    const rendered = renderLockBusy(
      { requester: OPERATOR, runbook: 'failover', node: 'cn1', runId: 'r9', since: NOW - 120_000 },
      'https://example.slack.com/archives/C1/p1',
      NOW,
    );
    const text = allText(rendered.blocks);
    expect(text).toContain(`*failover* on *cn1*`);
    expect(text).toContain(`<@${OPERATOR}> at 12:02:12 UTC (2m0s ago)`);
    expect(text).toContain('<https://example.slack.com/archives/C1/p1|Follow its thread>');
  });

  it('renders help and usage errors within the limits', () => {
    expect(blockLimitProblems(renderHelp(helpUsage({ sandbox: true })))).toEqual([]);
    expect(allText(renderHelp(helpUsage({ sandbox: true })).blocks)).toContain('/cell drill failover');
    expect(allText(renderHelp(helpUsage()).blocks)).not.toContain('drill');
    const usage = renderUsageError('bad <x>', ['/cell status']);
    expect(allText(usage.blocks)).toContain('bad &lt;x&gt;');
  });
});

describe('error rendering', () => {
  it('words errors by code and never shows a secret', () => {
    expect(renderError(new InputError('Unknown node')).text).toContain(':warning: Unknown node');
    expect(renderError(new NotAuthorizedError('nope')).text).toContain('Not allowed: nope');
    expect(renderError(new CellopsError('command_failed', `key ${NODEKEY}`, { retryable: true })).text).toBe(
      ':x: key [redacted] (`command_failed`) — trying again may work.',
    );
    expect(renderError(new Error('socket <hang up>')).text).toContain('socket &lt;hang up&gt;');
  });
});
