/**
 * Two bot replicas, each with its own escalation policy and Redis connection, on one real Redis: every
 * page, reminder and note goes out once, whichever replica got the input and however their timers meet,
 * and a replica that stops or dies mid-transition leaves nothing undone.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RESYNC_MS } from '../../../src/escalation/escalation-policy.js';
import type { EscalationStore } from '../../../src/escalation/escalation-store.js';
import { createRedisEscalationStore } from '../../../src/escalation/redis-escalation-store.js';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import {
  MIN,
  advance,
  alertFacts,
  approvalFacts,
  claimBarrier,
  escalationReplica,
  settle,
  summary,
  together,
} from '../../support/escalation-replicas.js';
import { uniquePrefix } from '../../support/redis-client.js';
import { redisForSuite } from '../../support/redis-suite.js';

const suite = redisForSuite();

/** A replica's view of the shared store: its own connection, as a separate process would have. */
function redisStore(prefix: string): EscalationStore {
  return createRedisEscalationStore({
    redis: suite.client(),
    keys: createRedisKeys(prefix),
    logger: new RecordingLogger(),
  });
}

const APPROVAL = 'run-1:swap-key:1';

/** Replicas a and b on one Redis prefix and one manual clock, both started. */
async function startedPair() {
  const prefix = uniquePrefix('escalation-replicas');
  const clock = new ManualClock();
  const a = escalationReplica('a', redisStore(prefix), clock);
  const b = escalationReplica('b', redisStore(prefix), clock);
  await a.policy.start();
  await b.policy.start();
  return { prefix, clock, a, b };
}

describe('escalation with two replicas on one Redis', () => {
  it('pages, notes and reminds once, whichever replica got the input; the other carries on after one stops', async () => {
    const { prefix, clock, a, b } = await startedPair();

    // The monitor's leader runs on a; the run waiting for approval is driven by b.
    await a.policy.alertOpened(alertFacts(clock), clock.now());
    await b.policy.approvalRequested(approvalFacts(clock));
    await advance(clock, [a, b], 5 * MIN - 10_000);
    expect(together([a, b])).toEqual([]);
    // Each replica has read the other's entry by now, so both timers fall due together.
    expect(a.policy.entries()).toHaveLength(2);
    expect(b.policy.entries()).toHaveLength(2);

    await advance(clock, [a, b], 10_000);
    expect(together([a, b])).toEqual(['alert-note', 'approval-reminder', 'page trigger cn1-abc']);

    // Acknowledged where the leader runs, whichever replica paged: the page is acknowledged, once.
    await a.policy.alertAcknowledged('cn1-abc', 'U0AAA');
    expect(together([a, b]).filter((s) => s.startsWith('page acknowledge'))).toEqual([
      'page acknowledge cn1-abc',
    ]);

    // b goes away; a pages the approval b's run is still waiting for, and only a.
    b.policy.stop();
    await b.policy.idle();
    const bBefore = b.intents.length;
    await advance(clock, [a, b], 5 * MIN);
    expect(b.intents).toHaveLength(bBefore);
    expect(summary(a.intents).filter((s) => s === `page trigger approval:${APPROVAL}`)).toHaveLength(1);
    expect(together([a, b]).filter((s) => s.startsWith('page trigger'))).toEqual([
      `page trigger approval:${APPROVAL}`,
      'page trigger cn1-abc',
    ]);

    // The run's approval ends (reported by whichever replica drives the run now) and the alert recovers.
    await a.policy.approvalEnded(APPROVAL, 'approved');
    await a.policy.alertResolved('cn1-abc');
    expect(together([a, b]).filter((s) => s.startsWith('page resolve'))).toEqual([
      `page resolve approval:${APPROVAL}`,
      'page resolve cn1-abc',
    ]);
    expect(await suite.client().hlen(createRedisKeys(prefix).escalation())).toBe(0);
    a.policy.stop();
  });

  it('carries out an entry once when both replicas’ timers fire at the same instant', async () => {
    const prefix = uniquePrefix('escalation-replicas');
    const clock = new ManualClock();
    // Both replicas reach the claim before either goes on: the closest race there is.
    const barrier = claimBarrier(2);
    // No re-reads in between: each replica acts on the entry as it loaded it at start.
    const options = { resyncMs: 60 * MIN };
    const a = escalationReplica('a', barrier.wrap(redisStore(prefix)), clock, options);
    const b = escalationReplica('b', barrier.wrap(redisStore(prefix)), clock, options);
    await a.policy.start();
    await a.policy.approvalRequested(approvalFacts(clock, { expiresAt: clock.now() + 60 * MIN }));
    await b.policy.start();
    expect(b.policy.entries()).toHaveLength(1);

    barrier.arm();
    await clock.advance(5 * MIN);
    await settle([a, b]);
    expect(together([a, b])).toEqual(['approval-reminder']);
    expect(barrier.held).toBe(2);
    expect([...a.logger.lines, ...b.logger.lines].filter((l) => l.level === 'error')).toEqual([]);

    // The replica that lost looks again shortly, finds the reminder sent and waits for the page; the
    // page races the same way, and a few seconds later both replicas know it was sent.
    await advance(clock, [a, b], 5 * MIN + 10_000);
    expect(together([a, b])).toEqual(['approval-reminder', `page trigger approval:${APPROVAL}`]);
    for (const r of [a, b]) {
      const entry = r.policy.entries()[0];
      expect(entry?.kind === 'approval' && entry.done).toEqual(['reminder', 'page']);
    }
    a.policy.stop();
    b.policy.stop();
  });

  it('lets the other replica page when one dies holding the claim', async () => {
    const prefix = uniquePrefix('escalation-replicas');
    const clock = new ManualClock();
    const claimTtlMs = 300;
    const options = { resyncMs: 60 * MIN, claimTtlMs };
    let claimedByA: () => void = () => undefined;
    const aClaimed = new Promise<void>((resolve) => {
      claimedByA = resolve;
    });
    let due = false;
    const storeA = redisStore(prefix);
    const storeB = redisStore(prefix);
    // When the alert falls due, a takes the claim in Redis, then hangs for good: a process that died
    // before sending anything.
    const dying: EscalationStore = {
      ...storeA,
      shared: true,
      claim: async (key, ttlMs) => {
        const claim = await storeA.claim(key, ttlMs);
        if (!due) return claim;
        claimedByA();
        return new Promise<never>(() => undefined);
      },
    };
    // b comes second, so it finds a's claim.
    const late: EscalationStore = {
      ...storeB,
      shared: true,
      claim: async (key, ttlMs) => {
        if (due) await aClaimed;
        return storeB.claim(key, ttlMs);
      },
    };
    const a = escalationReplica('a', dying, clock, options);
    const b = escalationReplica('b', late, clock, options);
    await b.policy.start();
    await b.policy.alertOpened(alertFacts(clock), clock.now());
    await a.policy.start();

    due = true;
    await clock.advance(5 * MIN);
    await settle([b]);
    expect(together([a, b])).toEqual([]);

    // a's claim lapses; b looks again (1 s later on its clock) and pages.
    await new Promise((resolve) => setTimeout(resolve, claimTtlMs + 100));
    await advance(clock, [b], 1_000);
    expect(summary(b.intents)).toEqual(['page trigger cn1-abc', 'alert-note']);
    expect(a.intents).toEqual([]);
    b.policy.stop();
    a.policy.stop();
  });

  it('reads the store again every resync, so a replica learns entries written after it started', async () => {
    const { clock, a, b } = await startedPair();
    await b.policy.approvalRequested(approvalFacts(clock));
    expect(a.policy.entries()).toEqual([]);
    await advance(clock, [a, b], DEFAULT_RESYNC_MS);
    expect(a.policy.entries().map((e) => e.facts.id)).toEqual([APPROVAL]);
    a.policy.stop();
    b.policy.stop();
  });
});
