/**
 * The readiness schedule end to end in one process: the monitor's check schedule starts the real `check`
 * runbook (src/runbooks/readiness.ts) against a simulated cell, and its outcome comes back to the monitor.
 * After a failover the check finds no standby, and that raises the "no standby" alert.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryIncidentStore } from '../../../src/monitor/incidents.js';
import { createMonitor, type Monitor } from '../../../src/monitor/monitor.js';
import { checkRunbook } from '../../../src/runbooks/check.js';
import { readinessCheckStarter } from '../../../src/runbooks/readiness.js';
import { backupNodekeySteps } from '../../../src/runbooks/backup-nodekey.js';
import type { CellopsConfig } from '../../../src/config/config.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { channelPosts, threadTexts } from '../../support/monitor-fixtures.js';
import { runSteps } from '../../support/run-steps.js';
import { CN1_KEY, DATA_DIR, createStandbyCell } from '../../support/standby-cell.js';

async function scheduledCell() {
  const cell = createStandbyCell();
  const backup = await runSteps(backupNodekeySteps(), {
    params: { cn: 'cn1' },
    config: cell.config,
    ports: cell.ports,
  });
  expect(backup.status).toBe('succeeded');
  const config: CellopsConfig = {
    ...cell.config,
    monitor: { ...cell.config.monitor, checkIntervalMs: 60_000 },
  };
  // The monitor and the check's timers run on a clock the test moves; the simulated chain keeps its own.
  const clock = new ManualClock(cell.clock.now());
  const chat = new FakeChat();
  const logger = new RecordingLogger();
  const running: Promise<void>[] = [];
  const late: { monitor?: Monitor } = {};
  const start = readinessCheckStarter({
    runbook: checkRunbook,
    config,
    ports: { ...cell.ports, clock },
    logger,
    reporter: () => late.monitor,
  });
  const checked: string[] = [];
  const monitor = createMonitor({
    config,
    rpc: cell.ports.rpc,
    chat,
    clock,
    logger,
    store: createMemoryIncidentStore({ clock }),
    state: cell.state,
    startCheck: (cn) => {
      checked.push(cn);
      const run = start(cn);
      running.push(run);
      return run;
    },
  });
  late.monitor = monitor;
  /** One tick `seconds` later, then every check it started has reported. */
  const tickAfter = async (seconds: number) => {
    cell.clock.advance(seconds * 1000);
    await clock.advance(seconds * 1000);
    await monitor.tick();
    await Promise.all(running.splice(0));
  };
  const alerts = () => channelPosts(chat);
  return { cell, clock, monitor, chat, checked, tickAfter, alerts };
}

/** What a standby failover leaves: cn1 stopped, cn1s running cn1's key, the roles recorded. */
async function failOver(t: Awaited<ReturnType<typeof scheduledCell>>): Promise<void> {
  t.cell.sim.host('cn1').stopDaemon();
  const cn1s = t.cell.sim.host('cn1s');
  cn1s.stopDaemon();
  cn1s.write(`${DATA_DIR}/klay/nodekey`, CN1_KEY, 0o600);
  cn1s.startDaemon();
  await t.cell.state.setRole({ role: 'cn1', servedBy: 'cn1s', since: t.clock.now(), runId: 'run-f1' });
}

describe('the readiness schedule', () => {
  it('runs the check runbook once per interval and stays quiet on a ready cell', async () => {
    const t = await scheduledCell();
    await t.tickAfter(3);
    expect(t.checked).toEqual([]);
    await t.tickAfter(61);
    expect(t.checked).toEqual(['cn1']);
    expect(t.alerts()).toEqual([]);
    await t.tickAfter(30);
    expect(t.checked).toEqual(['cn1']);
    const status = await t.monitor.status();
    expect(status.protection?.[0]).toMatchObject({ cn: 'cn1', standby: 'cn1s', backup: 'recorded' });
    expect(status.protection?.[0]?.checkFailures).toBeUndefined();
  });

  it('after a failover the scheduled check finds no standby: it feeds the one "no standby" alert', async () => {
    const t = await scheduledCell();
    await t.tickAfter(3);
    await failOver(t);
    await t.tickAfter(3);
    const alert = t.alerts().find((a) => a.message.text.includes('has no standby'));
    expect(alert?.message.text).toBe(
      'cn1 (served by cn1s) has no standby: nothing can take over if it fails',
    );
    await t.tickAfter(61);
    expect(t.checked).toEqual(['cn1']);
    await t.tickAfter(60);
    // The check's finding is told in the same thread, not as an alert of its own.
    expect(t.alerts().map((a) => a.message.text)).toEqual([
      'cn1 (served by cn1s) has no standby: nothing can take over if it fails',
    ]);
    const thread = alert ? threadTexts(t.chat, alert).join('\n') : '';
    expect(thread).toContain(
      'Readiness check: The standby runs a key of its own: cn1 has no standby — run /cell rebuild-standby cn1 (it is served by cn1s since run run-f1',
    );
    expect(t.cell.sim.violations).toEqual([]);
  });

  it('raises the "no standby" alert itself when the check is the first to find it', async () => {
    const t = await scheduledCell();
    // A monitor that has not run a round since the roles changed: only the check knows.
    await failOver(t);
    const start = readinessCheckStarter({
      runbook: checkRunbook,
      config: t.cell.config,
      ports: { ...t.cell.ports, clock: t.clock },
      logger: new RecordingLogger(),
      reporter: () => t.monitor,
    });
    await start('cn1');
    const texts = t.alerts().map((a) => a.message.text);
    expect(texts).toContain('cn1 (served by cn1s) has no standby: nothing can take over if it fails');
  });
});
