/**
 * The behaviour every RunLock must show, run against the in-memory lock (manual clock) and the Redis lock
 * (real Redis, real time). Time passes only through `wait`, so the same cases fit both.
 *
 * On real time a case must not depend on how fast the machine is: a lease that must stay alive gets a
 * TTL of seconds (`ttlMs`) and is renewed or extended right after it is taken, and a lease that must lapse
 * is waited for until nobody holds it (polled), never for a fixed time that a loaded machine may overrun.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  LockBusyError,
  LockLostError,
  type LockHolder,
  type LockLease,
  type RunLock,
} from '../../src/locks/types.js';

export interface RunLockHarness {
  /** The lock under test. */
  readonly lock: RunLock;
  /** A second view of the same store, as another bot replica would have; may be `lock` itself. */
  readonly other: RunLock;
  /**
   * A TTL long enough that renewal every ttl/3, or an extension right after an acquisition, is never late
   * on a loaded machine: seconds, on real time.
   */
  readonly ttlMs: number;
  /** Lets `ms` milliseconds pass (a manual clock advances; a real one sleeps). */
  wait(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** The TTL of a lease a case lets lapse; nothing relies on the lease living this long. */
const SHORT_TTL_MS = 100;

let runCounter = 0;

function holderFor(requester: string, extra: Partial<LockHolder> = {}): LockHolder {
  runCounter += 1;
  return {
    requester,
    runbook: 'failover',
    node: 'cn1',
    runId: `run-${runCounter}`,
    since: 1_764_126_000_000 + runCounter,
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, and it succeeded');
}

export function runLockContract(name: string, create: () => Promise<RunLockHarness>): void {
  describe(`RunLock contract: ${name}`, () => {
    let h: RunLockHarness;
    let key: string;
    let keyCounter = 0;

    beforeEach(async () => {
      h = await create();
      keyCounter += 1;
      key = `cell-${keyCounter}`;
    });

    afterEach(async () => {
      await h.close();
    });

    /** Waits in steps of 50 ms until nobody holds `key`, at most 10 TTLs: for a lease meant to lapse. */
    async function waitUntilFree(key: string): Promise<void> {
      for (let waited = 0; waited < 10 * h.ttlMs; waited += 50) {
        if ((await h.other.holder(key)) === undefined) return;
        await h.wait(50);
      }
      throw new Error(`${key} is still held after ${10 * h.ttlMs} ms: the lease never lapsed`);
    }

    /** Waits in steps of ttl/3 until the signal aborts, at most `ttls` TTLs. */
    async function waitForAbort(signal: AbortSignal, ttls: number): Promise<void> {
      const step = Math.floor(h.ttlMs / 3);
      for (let waited = 0; !signal.aborted && waited < ttls * h.ttlMs; waited += step) await h.wait(step);
    }

    it('a second requester is refused with the holder of the lock, its run and its fencing token', async () => {
      const holder = holderFor('U_ALICE', { node: 'cn2', runbook: 'failover-standby' });
      const lease = await h.lock.acquire(key, h.ttlMs, holder);

      const error = await rejection(h.other.acquire(key, h.ttlMs, holderFor('U_BOB')));

      expect(error).toBeInstanceOf(LockBusyError);
      const busy = error as LockBusyError;
      expect(busy.code).toBe('lock_busy');
      expect(busy.holder).toEqual({ ...holder, fencingToken: lease.fencingToken });
      expect(busy.message).toContain('U_ALICE');
      expect(await h.other.holder(key)).toEqual({ ...holder, fencingToken: lease.fencingToken });
      expect(lease.key).toBe(key);
      expect(lease.holder).toEqual(holder);
    });

    it('of many simultaneous requesters exactly one gets the lock', async () => {
      const attempts = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? h.lock : h.other).acquire(key, h.ttlMs, holderFor(`U_${i}`)),
        ),
      );
      const won = attempts.filter((a) => a.status === 'fulfilled');
      const refused = attempts.filter((a) => a.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(refused.every((a) => a.reason instanceof LockBusyError)).toBe(true);
    });

    it('nobody holds a lock that was never taken', async () => {
      expect(await h.lock.holder(key)).toBeUndefined();
    });

    it('only the owner can release, and once released another requester can take it', async () => {
      const lease = await h.lock.acquire(key, h.ttlMs, holderFor('U_ALICE'));
      const forged: LockLease = { ...lease, token: 'not-the-owner' };

      expect(await h.other.release(forged)).toBe(false);
      expect(await h.other.isHeld(lease)).toBe(true);
      expect(await h.lock.release(lease)).toBe(true);
      expect(await h.lock.isHeld(lease)).toBe(false);
      expect(await h.lock.holder(key)).toBeUndefined();
      expect(await h.lock.release(lease)).toBe(false);

      const next = await h.other.acquire(key, h.ttlMs, holderFor('U_BOB'));
      expect(await h.other.isHeld(next)).toBe(true);
    });

    it('fencing tokens grow with every acquisition, across releases', async () => {
      const tokens: number[] = [];
      for (let i = 0; i < 5; i++) {
        const lease = await (i % 2 === 0 ? h.lock : h.other).acquire(key, h.ttlMs, holderFor('U_ALICE'));
        tokens.push(lease.fencingToken);
        expect(await h.lock.release(lease)).toBe(true);
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] ?? Infinity);
    });

    it('a lapsed lease lets another owner take over with a larger fencing token, and the stale owner can neither extend nor release', async () => {
      // A short lease, left to lapse on its own: the store must expire it (no release, no extension).
      const stale = await h.lock.acquire(key, SHORT_TTL_MS, holderFor('U_ALICE'));
      await waitUntilFree(key);

      const fresh = await h.other.acquire(key, h.ttlMs, holderFor('U_BOB'));

      expect(fresh.fencingToken).toBeGreaterThan(stale.fencingToken);
      const error = await rejection(h.lock.extend(stale, h.ttlMs));
      expect(error).toBeInstanceOf(LockLostError);
      expect((error as LockLostError).code).toBe('lock_lost');
      expect(await h.lock.release(stale)).toBe(false);
      expect(await h.lock.isHeld(stale)).toBe(false);
      expect(await h.other.isHeld(fresh)).toBe(true);
      expect((await h.other.holder(key))?.requester).toBe('U_BOB');
    });

    it('extending keeps the lease alive past its first TTL', async () => {
      // Extended at once (a whole TTL of slack), then waited for past the first TTL by twice its length:
      // only the extension can keep it, and the extension (ten TTLs) outlasts any overrun of the wait.
      const lease = await h.lock.acquire(key, h.ttlMs, holderFor('U_ALICE'));
      const extended = await h.lock.extend(lease, h.ttlMs * 10);
      await h.wait(h.ttlMs * 2);

      expect(await h.lock.isHeld(extended)).toBe(true);
      expect(extended.fencingToken).toBe(lease.fencingToken);
      expect(extended.expiresAt).toBeGreaterThan(lease.expiresAt);
      await expect(h.other.acquire(key, h.ttlMs, holderFor('U_BOB'))).rejects.toBeInstanceOf(LockBusyError);
    });

    it("the owner records the run's thread in the holder; a stale lease cannot", async () => {
      const lease = await h.lock.acquire(key, h.ttlMs, holderFor('U_ALICE'));
      await h.lock.setThread(lease, { channel: 'C_OPS', ts: '1764126000.000100' });
      await h.other.setThread({ ...lease, token: 'not-the-owner' }, { channel: 'C_EVIL', ts: '1.2' });

      const holder = await h.other.holder(key);
      expect(holder?.thread).toEqual({ channel: 'C_OPS', ts: '1764126000.000100' });
      expect(holder?.fencingToken).toBe(lease.fencingToken);
      const busy = (await rejection(h.other.acquire(key, h.ttlMs, holderFor('U_BOB')))) as LockBusyError;
      expect(busy.holder?.thread).toEqual({ channel: 'C_OPS', ts: '1764126000.000100' });
    });

    it('withLock keeps the lock across many TTLs, then releases it', async () => {
      const holder = holderFor('U_ALICE');
      const seen = await h.lock.withLock(key, h.ttlMs, holder, async (signal, lease) => {
        const firstExpiry = lease.expiresAt;
        await h.wait(h.ttlMs * 4);
        const busy = await rejection(h.other.acquire(key, h.ttlMs, holderFor('U_BOB')));
        return {
          aborted: signal.aborted,
          held: await h.other.isHeld(lease),
          renewed: lease.expiresAt > firstExpiry,
          busy,
        };
      });

      expect(seen.aborted).toBe(false);
      expect(seen.held).toBe(true);
      expect(seen.renewed).toBe(true);
      expect(seen.busy).toBeInstanceOf(LockBusyError);
      expect(await h.lock.holder(key)).toBeUndefined();
    });

    it('withLock aborts the signal with LockLostError when another owner takes the lock over, and leaves that owner alone', async () => {
      const outcome = await h.lock.withLock(key, h.ttlMs, holderFor('U_ALICE'), async (signal, lease) => {
        // As if the lease had lapsed: the key is free and someone else takes it.
        await h.lock.release(lease);
        const thief = await h.other.acquire(key, h.ttlMs * 10, holderFor('U_BOB'));
        await waitForAbort(signal, 2);
        return { aborted: signal.aborted, reason: signal.reason as unknown, thief };
      });

      expect(outcome.aborted).toBe(true);
      expect(outcome.reason).toBeInstanceOf(LockLostError);
      expect(await h.other.isHeld(outcome.thief)).toBe(true);
      expect((await h.other.holder(key))?.requester).toBe('U_BOB');
    });

    it('withLock refuses without running the work when the lock is held', async () => {
      await h.other.acquire(key, h.ttlMs, holderFor('U_BOB'));
      let ran = false;

      const error = await rejection(
        h.lock.withLock(key, h.ttlMs, holderFor('U_ALICE'), async () => {
          ran = true;
        }),
      );

      expect(error).toBeInstanceOf(LockBusyError);
      expect((error as LockBusyError).holder?.requester).toBe('U_BOB');
      expect(ran).toBe(false);
    });

    it("withLock releases the lock when the work fails and passes the work's error on", async () => {
      const failure = new Error('step 3 failed');

      const error = await rejection(
        h.lock.withLock(key, h.ttlMs, holderFor('U_ALICE'), async () => {
          throw failure;
        }),
      );

      expect(error).toBe(failure);
      expect(await h.lock.holder(key)).toBeUndefined();
    });
  });
}
