/**
 * No alert for what a run is doing: a standby failover stops the standby's kcnd for the key swap and
 * starts it again; the monitor must not open a "cn1s is down" alert for it (with paging, that wakes a
 * second person for nothing), and must say in the run's thread what it saw instead. After the run the node
 * is watched as usual: a real outage alerts again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../src/sandbox/start-sandbox.js';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { ALICE, startFastSandbox, until } from '../../support/sandbox-harness.js';

let sandbox: Sandbox | undefined;

afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

async function finished(sb: Sandbox, runId: string): Promise<RunRecord> {
  return until(`run ${runId} to finish`, async () => {
    const run = await sb.engine.get(runId);
    return run && ['succeeded', 'failed', 'aborted'].includes(run.status) ? run : undefined;
  });
}

const alertsAbout = (sb: Sandbox, machine: string) =>
  sb.chat
    .messages()
    .filter(
      (m) => !m.threadTs && !m.onlyFor && m.text.includes(machine) && /down|stalled|lagging/.test(m.text),
    );

describe('alerts while a run works on a node', () => {
  it('a standby failover opens no alert for the standby it stops, notes it in the run thread, and a later outage alerts', async () => {
    // Approvals are given after a while, so the standby stays stopped for many probe rounds.
    sandbox = await startFastSandbox({ logger: new RecordingLogger(), drillApprovalDelayMs: 1_500 });
    const sb = sandbox;
    await sb.handlers.command('/cell drill failover cn1', ALICE);
    const started = await until('the run', async () => (await sb.engine.list(1))[0]);
    const run = await finished(sb, started.id);
    expect(run.status).toBe('succeeded');

    expect(alertsAbout(sb, 'cn1s')).toEqual([]);
    const thread = run.thread;
    const notes = sb.chat
      .messages()
      .filter((m) => m.threadTs === thread?.ts && m.text.includes('Monitor: cn1s is'));
    expect(notes.length).toBeGreaterThan(0);
    expect(notes[0]?.text).toContain('no alert and no page');

    // cn1's own alert resolves once cn1s serves it; then a real outage of cn1s is an alert again.
    await until('the cn1 alert to resolve', () =>
      sb.chat
        .messages()
        .find((m) => !m.threadTs && m.edited && m.text.startsWith('Resolved') && m.text.includes('cn1')),
    );
    await sb.handlers.fault('cn1s', 'stop', ALICE);
    const alert = await until('the alert after the run', () => alertsAbout(sb, 'cn1s')[0]);
    expect(alert.text).toContain('cn1');
  });
});
