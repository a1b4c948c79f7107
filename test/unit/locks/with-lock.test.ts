import { describe, expect, it } from 'vitest';
import { createMemoryLock } from '../../../src/locks/memory-lock.js';
import { LockLostError, LockStoreError, type LockHolder, type LockLease } from '../../../src/locks/types.js';
import { runWithLock, type LockPrimitives } from '../../../src/locks/with-lock.js';
import { ManualClock } from '../../fakes/manual-clock.js';

const holder: LockHolder = { requester: 'U_ALICE', runbook: 'failover', node: 'cn1', runId: 'r1', since: 0 };

/** The in-memory lock, with renewals that fail (or never answer) while `mode` says so. */
function flakyLock(clock: ManualClock) {
  const inner = createMemoryLock({ clock });
  const state = { mode: 'ok' as 'ok' | 'fail' | 'hang', extendCalls: 0 };
  const lock: LockPrimitives = {
    acquire: (key, ttlMs, h) => inner.acquire(key, ttlMs, h),
    release: (lease) => inner.release(lease),
    extend: (lease: LockLease, ttlMs: number) => {
      state.extendCalls += 1;
      if (state.mode === 'fail') return Promise.reject(new LockStoreError('connection refused'));
      if (state.mode === 'hang') return new Promise<LockLease>(() => undefined);
      return inner.extend(lease, ttlMs);
    },
  };
  return { lock, inner, state };
}

describe('withLock renewal', () => {
  it('a renewal failure that lasts until the lease lapses aborts the work with LockLostError carrying the store error', async () => {
    const clock = new ManualClock();
    const { lock, state } = flakyLock(clock);

    const reason = await runWithLock({ lock, clock }, 'cell', 300, holder, async (signal) => {
      state.mode = 'fail';
      for (let i = 0; i < 20 && !signal.aborted; i++) await clock.advance(50);
      return signal.reason as unknown;
    });

    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as LockLostError).cause).toBeInstanceOf(LockStoreError);
    expect(state.extendCalls).toBeGreaterThan(1);
  });

  it('a passing renewal failure is retried and the work keeps the lock', async () => {
    const clock = new ManualClock();
    const { lock, inner, state } = flakyLock(clock);

    const outcome = await runWithLock({ lock, clock }, 'cell', 300, holder, async (signal, lease) => {
      state.mode = 'fail';
      await clock.advance(130);
      state.mode = 'ok';
      await clock.advance(900);
      return { aborted: signal.aborted, held: await inner.isHeld(lease) };
    });

    expect(outcome).toEqual({ aborted: false, held: true });
  });

  it('a renewal that gets no answer before the lease lapses aborts the work', async () => {
    const clock = new ManualClock();
    const { lock, state } = flakyLock(clock);

    const reason = await runWithLock({ lock, clock }, 'cell', 300, holder, async (signal) => {
      state.mode = 'hang';
      for (let i = 0; i < 20 && !signal.aborted; i++) await clock.advance(50);
      return signal.reason as unknown;
    });

    expect(reason).toBeInstanceOf(LockLostError);
    expect(clock.now()).toBeLessThanOrEqual(Date.UTC(2026, 10, 26, 3, 0, 0) + 400);
  });

  it('the lease given to the work follows the renewals', async () => {
    const clock = new ManualClock();
    const { lock } = flakyLock(clock);

    const expiries = await runWithLock({ lock, clock }, 'cell', 300, holder, async (_signal, lease) => {
      const first = lease.expiresAt;
      await clock.advance(100);
      return [first, lease.expiresAt];
    });

    expect(expiries[1]).toBe((expiries[0] ?? 0) + 100);
  });
});
