import { describe, expect, it } from 'vitest';
import { createMemoryLock } from '../../../src/locks/memory-lock.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { runLockContract } from '../../contract/run-lock.contract.js';

runLockContract('in-memory lock, manual clock', async () => {
  const clock = new ManualClock();
  const lock = createMemoryLock({ clock });
  return {
    lock,
    other: lock,
    ttlMs: 300,
    wait: (ms) => clock.advance(ms),
    close: async () => undefined,
  };
});

describe('in-memory lock', () => {
  it('keeps no timer running once withLock has returned', async () => {
    const clock = new ManualClock();
    const lock = createMemoryLock({ clock });
    const holder = {
      requester: 'U_ALICE',
      runbook: 'failover',
      node: 'cn1',
      runId: 'r1',
      since: clock.now(),
    };

    await lock.withLock('cell', 300, holder, async () => {
      await clock.advance(250);
    });

    expect(clock.pending).toBe(0);
  });
});
