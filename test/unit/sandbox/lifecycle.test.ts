/**
 * The sandbox plays a standby-mode CN's whole life through its slash commands, as a new user would: a
 * drilled failure and failover, the refusal of a second failover with no standby, a rebuild, a drilled
 * failure of the machine now serving cn1 and the failover back, another rebuild, and a drilled switchover.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../src/sandbox/start-sandbox.js';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { ALICE, approveUntilDone, startFastSandbox, until } from '../../support/sandbox-harness.js';

let sandbox: Sandbox | undefined;

afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

const DONE = ['succeeded', 'failed', 'aborted'];

async function newRun(sb: Sandbox, before: number): Promise<RunRecord> {
  return until('a new run', async () => {
    const runs = await sb.engine.list(50);
    return runs.length > before ? runs[0] : undefined;
  });
}

/** Runs the command as alice; bob approves every request that comes; resolves with the finished run. */
async function runApproved(sb: Sandbox, command: string): Promise<RunRecord> {
  const before = (await sb.engine.list(50)).length;
  await sb.handlers.command(command, ALICE);
  return approveUntilDone(sb, (await newRun(sb, before)).id);
}

/** A drill approves by itself; resolves with the finished run. */
async function drill(sb: Sandbox, what: 'failover' | 'switchover'): Promise<RunRecord> {
  const before = (await sb.engine.list(50)).length;
  await sb.handlers.command(`/cell drill ${what} cn1`, ALICE);
  const run = await newRun(sb, before);
  return until(`the ${what} drill`, async () => {
    const current = await sb.engine.get(run.id);
    return current && DONE.includes(current.status) ? current : undefined;
  });
}

function expectOk(run: RunRecord): void {
  expect(run.error, run.steps.map((s) => `${s.id}: ${s.output.join(' | ')}`).join('\n')).toBeUndefined();
  expect(run.status).toBe('succeeded');
}

describe('the sandbox through the lifecycle of cn1', () => {
  it('fails over, rebuilds, fails over back, rebuilds and switches over, never running one key twice', async () => {
    const sb = await startFastSandbox({ drillApprovalDelayMs: 20 });
    sandbox = sb;
    const sim = () => sb.cell.current().sim;
    const cn1Address = sim().host('cn1').loadedAddress();

    expectOk(await drill(sb, 'failover'));
    expect(sim().host('cn1s').loadedAddress()).toBe(cn1Address);

    const before = (await sb.engine.list(50)).length;
    await sb.handlers.command('/failover cn1', ALICE);
    const refusal = sb.chat.messages().at(-1);
    expect(refusal?.onlyFor).toBe(ALICE);
    expect(refusal?.text).toContain('/cell rebuild-standby cn1');
    expect(await sb.engine.list(50)).toHaveLength(before);

    const rebuilt = await runApproved(sb, '/cell rebuild-standby cn1');
    expectOk(rebuilt);
    expect(rebuilt.summary).toContain('on cn1');
    const fresh = sim().host('cn1').loadedAddress();
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(cn1Address);

    expectOk(await drill(sb, 'failover'));
    expect(sim().host('cn1').loadedAddress()).toBe(cn1Address);
    expect(sim().host('cn1s').isRunning()).toBe(false);

    expectOk(await runApproved(sb, '/cell rebuild-standby cn1'));
    expect(sim().host('cn1s').isRunning()).toBe(true);
    expect(sim().host('cn1s').loadedAddress()).not.toBe(cn1Address);

    const switched = await drill(sb, 'switchover');
    expectOk(switched);
    expect(switched.steps.map((s) => s.id)).toContain('stage-key');
    expect(switched.steps.find((s) => s.id === 'verify')?.output.join('\n')).toMatch(/cn1 missed/);
    expect(sim().host('cn1s').loadedAddress()).toBe(cn1Address);
    expect(sim().host('cn1').isRunning()).toBe(false);
    expect(sim().violations).toEqual([]);
  }, 60_000);
});
