import { describe, expect, it } from 'vitest';
import { checkSteps } from '../../../src/runbooks/check.js';
import { createMemoryCellState } from '../../../src/infra/memory-cell-state.js';
import { HostError, ReadinessCheckError } from '../../../src/errors.js';
import type { RunbookPorts } from '../../../src/runbooks/types.js';
import { createSimCloud } from '../../../src/sandbox/sim-cloud.js';
import { FakeShell } from '../../fakes/fake-shell.js';
import { FakeNodeRpc } from '../../fakes/fake-node-rpc.js';
import { createJumpClock, runSteps } from '../../support/run-steps.js';
import { snapshotConfig } from '../../support/snapshot-fixture.js';

const PARAMS = { cn: 'cn2' };
const KCN = 'a1'.repeat(32);
const CONF = 'c0'.repeat(32);
const NEW_KCN = 'a2'.repeat(32);

/** cn2 at 10.0.2.11 whose files hash to `kcn` and `conf`; its image recorded with `recorded`. */
async function setup(live: { kcn: string; conf: string }, recorded?: { kcn?: string; conf?: string }) {
  const clock = createJumpClock();
  const state = createMemoryCellState();
  if (recorded)
    await state.setImage({
      cn: 'cn2',
      imageId: 'ami-0cn2',
      at: clock.now(),
      runId: 'r-image',
      ...(recorded.kcn === undefined ? {} : { binarySha256: recorded.kcn }),
      ...(recorded.conf === undefined ? {} : { confSha256: recorded.conf }),
    });
  const shell = new FakeShell()
    .on('test -e', { exitCode: 0 })
    .on('sha256sum -- /usr/bin/kcn', { stdout: `${live.kcn}  /usr/bin/kcn\n` })
    .on('sha256sum -- /etc/kcnd/conf/kcnd.conf', { stdout: `${live.conf}  /etc/kcnd/conf/kcnd.conf\n` });
  const ports: RunbookPorts = {
    shell,
    cloud: createSimCloud({ clock }),
    rpc: new FakeNodeRpc(),
    clock,
    state,
  };
  const run = () =>
    runSteps(
      checkSteps().filter((s) => s.id === 'image-fresh'),
      { params: PARAMS, config: snapshotConfig(), ports, undoOnFailure: false },
    );
  return { run, shell, state };
}

describe('readiness: is the machine image fresh (snapshot mode)', () => {
  it("passes when the image holds the live CN's kcn binary and kcnd.conf", async () => {
    const { run, shell } = await setup({ kcn: KCN, conf: CONF }, { kcn: KCN, conf: CONF });
    const result = await run();
    expect(result.status).toBe('succeeded');
    expect(shell.commands('cn2')).toEqual(
      expect.arrayContaining([
        'sudo -n sha256sum -- /usr/bin/kcn',
        'sudo -n sha256sum -- /etc/kcnd/conf/kcnd.conf',
      ]),
    );
    // Content only: no file times asked for.
    expect(shell.commands().some((c) => c.includes('stat'))).toBe(false);
  });

  it('says a fresh image is due when kcn was upgraded, whatever its file time', async () => {
    const result = await (await setup({ kcn: NEW_KCN, conf: CONF }, { kcn: KCN, conf: CONF })).run();
    expect(result.status).toBe('failed');
    expect(result.error).toBeInstanceOf(ReadinessCheckError);
    expect(String(result.error)).toMatch(
      /A fresh image of cn2 is due: \/usr\/bin\/kcn \(the kcn binary\) on cn2 differs from the latest image ami-0cn2 \(run r-image\)\. Run \/cell image cn2\./,
    );
  });

  it('says so when kcnd.conf changed', async () => {
    const result = await (await setup({ kcn: KCN, conf: 'c1'.repeat(32) }, { kcn: KCN, conf: CONF })).run();
    expect(String(result.error)).toContain('/etc/kcnd/conf/kcnd.conf on cn2 differs');
  });

  it('cannot judge an image recorded without checksums, and asks for a new one', async () => {
    const result = await (await setup({ kcn: KCN, conf: CONF }, {})).run();
    expect(String(result.error)).toMatch(
      /records no checksums of its kcn binary and kcnd.conf.*run \/cell image cn2/,
    );
  });

  it('compares with the replacement that serves cn2 after a snapshot failover', async () => {
    const { run, shell, state } = await setup({ kcn: KCN, conf: CONF }, { kcn: KCN, conf: CONF });
    await state.setRole({
      role: 'cn2',
      servedBy: 'i-0new',
      instanceId: 'i-0new',
      address: '10.0.2.77',
      since: 1,
      runId: 'r1',
    });
    expect((await run()).status).toBe('succeeded');
    expect(new Set(shell.executed.map((e) => e.host.address))).toEqual(new Set(['10.0.2.77']));
  });

  it('does not fail when the CN cannot be reached (it may be the failed one)', async () => {
    const { run, shell } = await setup({ kcn: KCN, conf: CONF }, { kcn: KCN, conf: CONF });
    shell.on('test -e', new HostError('host_unreachable', 'cn2 10.0.2.11: connection refused'));
    const result = await run();
    expect(result.status).toBe('succeeded');
    expect(result.outputs.map((o) => o.line).join('\n')).toContain("could not read cn2's files");
  });
});
