import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../src/sandbox/start-sandbox.js';
import { SANDBOX_CN1_BACKUP } from '../../../src/sandbox/sim-cell-seed.js';
import { ALERT_ACTIONS } from '../../../src/views/action-ids.js';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import {
  ALICE,
  BOB,
  approveUntilDone,
  buttons,
  startFastSandbox,
  until,
} from '../../support/sandbox-harness.js';

let sandbox: Sandbox | undefined;
let logger: RecordingLogger;

afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

/** A sandbox on real timers, kept short: 200 ms blocks and probes, conditions after a second. */
async function start(): Promise<Sandbox> {
  logger = new RecordingLogger();
  sandbox = await startFastSandbox({ logger, drillApprovalDelayMs: 50 });
  return sandbox;
}

async function finished(sb: Sandbox, runId: string): Promise<RunRecord> {
  return until(`run ${runId} to finish`, async () => {
    const run = await sb.engine.get(runId);
    return run && ['succeeded', 'failed', 'aborted'].includes(run.status) ? run : undefined;
  });
}

function latestRun(sb: Sandbox): Promise<RunRecord> {
  return until('a run', async () => (await sb.engine.list(1))[0]);
}

describe('the sandbox', () => {
  it('says where its state is kept, in the log and as the first console message, and listens on loopback', async () => {
    const sb = await start();
    expect(sb.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sb.chat.messages()[0]?.text).toContain('SANDBOX');
    expect(sb.chat.messages()[0]?.text).toContain('in-memory');
    expect(logger.lines.some((l) => l.msg.includes('SANDBOX') && l.msg.includes('in-memory'))).toBe(true);
    const page = await (await fetch(sb.url)).text();
    expect(page).toContain('SANDBOX');
    expect(page).toContain('Reset cell');
  });

  it('answers slash commands as Slack would: status only to whoever asked, unknown commands with a hint', async () => {
    const sb = await start();
    await sb.handlers.command('/cell status', 'U0DAVE');
    await sb.handlers.command('/deploy everything', ALICE);
    const replies = sb.chat.messages().slice(1);
    expect(replies[0]).toMatchObject({ onlyFor: 'U0DAVE' });
    expect(replies[0]?.text).toContain('status');
    expect(replies[1]).toMatchObject({ onlyFor: ALICE });
    expect(replies[1]?.text).toContain('/cell help');
    await expect(sb.handlers.command('/cell status', 'U0MALLORY')).rejects.toThrow(/unknown sandbox user/);
  });

  it('drills a whole failover with approvals by people other than the requester, and reports each step', async () => {
    const sb = await start();
    await sb.handlers.command('/cell drill failover cn1', ALICE);
    const run = await finished(sb, (await latestRun(sb)).id);

    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(run.requester).toBe(ALICE);
    const approvals = run.steps.flatMap((s) => s.approvals);
    expect(approvals.length).toBeGreaterThan(0);
    for (const approval of approvals) {
      expect(['U0BOB', 'U0CAROL']).toContain(approval.user);
    }
    const report = await until('the drill report', () =>
      sb.chat.messages().find((m) => !m.threadTs && m.text.startsWith('Drill report')),
    );
    const shown = JSON.stringify(report.blocks);
    expect(shown).toContain('Fence the old active');
    expect(shown).toContain('Record the new roles');
    expect(shown).toContain('Time to recover');
    expect(sb.cell.current().sim.host('cn1s').devices.get('eth0')?.size).toBe(2);
    expect(sb.cell.current().sim.violations).toEqual([]);
  });

  it('lets people try again after Reset cell, and refuses a second drill before it', async () => {
    const sb = await start();
    await sb.handlers.command('/cell drill failover cn1', ALICE);
    await finished(sb, (await latestRun(sb)).id);

    await sb.handlers.command('/cell drill failover cn1', ALICE);
    const refusal = sb.chat.messages().at(-1);
    expect(refusal?.onlyFor).toBe(ALICE);
    expect(refusal?.text).toContain('Reset cell');

    await sb.handlers.fault('cell', 'reset', ALICE);
    expect(sb.cell.current().sim.host('cn1').isRunning()).toBe(true);
    await sb.handlers.command('/cell drill failover cn1', BOB);
    const second = await until('a second run', async () => {
      const runs = await sb.engine.list(2);
      return runs.length === 2 ? runs[0] : undefined;
    });
    expect((await finished(sb, second.id)).status).toBe('succeeded');
  });

  it('does not reset the cell under a run that is waiting for approval', async () => {
    const sb = await start();
    await sb.handlers.fault('cn1', 'stop', ALICE);
    await sb.handlers.command('/failover cn1', ALICE);
    const run = await latestRun(sb);
    await until('the approval request', async () =>
      (await sb.engine.get(run.id))?.status === 'waiting-approval' ? true : undefined,
    );

    await sb.handlers.fault('cell', 'reset', ALICE);

    expect(sb.chat.messages().at(-1)).toMatchObject({ onlyFor: ALICE });
    expect(sb.chat.messages().at(-1)?.text).toContain('Not reset');
    expect(sb.cell.current().sim.host('cn1').isRunning()).toBe(false);
    await sb.handlers.command(`/cell abort ${run.id}`, ALICE);
    expect((await finished(sb, run.id)).status).toBe('aborted');
  });

  it('raises an alert for a stalled cn1 whose Start failover button runs the failover that resolves it', async () => {
    const sb = await start();
    await sb.handlers.fault('cn1', 'stall', ALICE);
    const alert = await until('the alert', () =>
      sb.chat
        .messages()
        .find((m) => !m.threadTs && buttons(m).some((b) => b.action_id === ALERT_ACTIONS.startFailover)),
    );
    expect(alert.text).toContain('cn1');
    const startButton = buttons(alert).find((b) => b.action_id === ALERT_ACTIONS.startFailover);
    await sb.handlers.action({
      actionId: ALERT_ACTIONS.startFailover,
      value: startButton?.value ?? '',
      user: ALICE,
      messageTs: alert.ts,
      threadTs: alert.ts,
    });
    const run = await latestRun(sb);

    // Approve every request as bob, as the approvals come.
    const done = await approveUntilDone(sb, run.id);
    expect(done.error).toBeUndefined();
    expect(done.status).toBe('succeeded');
    const resolved = await until('the alert to resolve', () => {
      const parent = sb.chat.messages().find((m) => m.ts === alert.ts);
      return parent?.edited && parent.text.startsWith('Resolved') ? parent : undefined;
    });
    expect(buttons(resolved)).toEqual([]);
  });

  it('alerts on cn1 cut off from its peers and resolves the alert once it is brought back', async () => {
    const sb = await start();
    await sb.handlers.fault('cn1', 'isolate', ALICE);
    const alert = await until('the isolation alert', () =>
      sb.chat.messages().find((m) => !m.threadTs && m.text.includes('cn1 is isolated')),
    );
    await sb.handlers.fault('cn1', 'heal', ALICE);
    await until('the alert to resolve', () => {
      const parent = sb.chat.messages().find((m) => m.ts === alert.ts);
      return parent?.text.startsWith('Resolved') ? parent : undefined;
    });
  });

  it("runs cn2's snapshot failover as a dry run: preflight only, nothing launched or stopped", async () => {
    const sb = await start();
    await sb.handlers.fault('cn2', 'stop', ALICE);
    await sb.handlers.command('/failover cn2 --dry-run', ALICE);
    const run = await finished(sb, (await latestRun(sb)).id);
    expect(run.dryRun).toBe(true);
    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');
    const ops = sb.cell.current().cloud.calls.map((c) => c.op);
    expect(ops).not.toContain('runInstance');
    expect(ops).not.toContain('stopInstance');
    expect(sb.cell.current().sim.host('pn1').isRunning()).toBe(true);
  });

  it('never shows a nodekey in the console or the log', async () => {
    const sb = await start();
    const key = sb.cell.current().sim.host('cn1s').read(SANDBOX_CN1_BACKUP) ?? '';
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    await sb.handlers.command('/cell drill failover cn1', ALICE);
    await finished(sb, (await latestRun(sb)).id);
    await sb.handlers.command('/cell status', ALICE);
    expect(JSON.stringify(sb.chat.messages())).not.toContain(key);
    expect(JSON.stringify(logger.lines)).not.toContain(key);
  });
});
