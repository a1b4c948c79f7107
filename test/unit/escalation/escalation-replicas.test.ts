/**
 * Policies sharing one store as replicas do (a memory store that says it is shared): inputs on one replica
 * and due entries on another are carried out once, from the entry as stored, and an input waits for a
 * claim another replica holds. test/integration/escalation/escalation-replicas.test.ts does it on Redis.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RESYNC_MS } from '../../../src/escalation/escalation-policy.js';
import { createMemoryEscalationStore } from '../../../src/escalation/escalation-store.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import {
  MIN,
  advance,
  alertFacts,
  approvalFacts,
  escalationReplica,
  summary,
  together,
} from '../../support/escalation-replicas.js';

const APPROVAL = 'run-1:swap-key:1';

async function twoReplicas() {
  const clock = new ManualClock();
  const store = createMemoryEscalationStore({ shared: true });
  const a = escalationReplica('a', store, clock);
  const b = escalationReplica('b', store, clock);
  await a.policy.start();
  await b.policy.start();
  return { clock, store, a, b };
}

describe('escalation policies sharing a store', () => {
  it('carries out each due entry once, and the other replica goes on when one stops', async () => {
    const { clock, a, b } = await twoReplicas();
    await a.policy.alertOpened(alertFacts(clock), clock.now());
    await b.policy.approvalRequested(approvalFacts(clock));
    await advance(clock, [a, b], 5 * MIN);
    expect(together([a, b])).toEqual(['alert-note', 'approval-reminder', 'page trigger cn1-abc']);

    b.policy.stop();
    await advance(clock, [a, b], 5 * MIN);
    expect(summary(a.intents)).toContain(`page trigger approval:${APPROVAL}`);
    expect(together([a, b]).filter((s) => s.startsWith('page trigger'))).toHaveLength(2);
    a.policy.stop();
  });

  it('goes by the entry as stored, not as it remembers it: another replica paged meanwhile', async () => {
    const { clock, store, a } = await twoReplicas();
    await a.policy.alertOpened(alertFacts(clock), clock.now());
    // Another replica pages the alert: its transition, saved under its claim.
    const other = await store.claim('alert:cn1-abc', 30_000);
    if (!other?.entry || other.entry.kind !== 'alert') throw new Error('no alert entry to page');
    await other.commit({ ...other.entry, state: 'paged', paged: true, pagedSeverity: 'critical' });
    expect(a.policy.entries()[0]).toMatchObject({ state: 'waiting' });

    // a's timer still falls due, and a finds the page sent.
    await clock.advance(5 * MIN);
    await a.policy.idle();
    expect(a.intents).toEqual([]);
    expect(a.policy.entries()[0]).toMatchObject({ state: 'paged' });

    await a.policy.alertAcknowledged('cn1-abc', 'U0AAA');
    expect(summary(a.intents)).toEqual(['page acknowledge cn1-abc']);
  });

  it('does not remind again when a known request round is announced again', async () => {
    const { clock, a, b } = await twoReplicas();
    const facts = approvalFacts(clock);
    await a.policy.approvalRequested(facts);
    await advance(clock, [a, b], 6 * MIN);
    await b.policy.approvalRequested(facts);
    await advance(clock, [a, b], 2 * MIN);
    expect(together([a, b])).toEqual(['approval-reminder']);
  });

  it('has an input wait while another replica holds the entry, then apply it to what that replica saved', async () => {
    const { clock, store, a, b } = await twoReplicas();
    await a.policy.alertOpened(alertFacts(clock), clock.now());
    const held = await store.claim('alert:cn1-abc', 30_000);
    if (!held?.entry || held.entry.kind !== 'alert') throw new Error('no alert entry to hold');
    let done = false;
    const acknowledging = b.policy.alertAcknowledged('cn1-abc', 'U0AAA').then(() => {
      done = true;
    });
    await clock.advance(200);
    expect(done).toBe(false);
    // The holder pages and saves that, then lets go: the acknowledgement acknowledges that page.
    await held.commit({ ...held.entry, state: 'paged', paged: true, pagedSeverity: 'critical' });
    await clock.advance(100);
    await acknowledging;
    expect(summary(b.intents)).toEqual(['page acknowledge cn1-abc']);
  });

  it('never drops an input that waits longer than a claim lives: it warns and carries it out once it can', async () => {
    const { clock, store, a } = await twoReplicas();
    await a.policy.alertOpened(alertFacts(clock), clock.now());
    const held = await store.claim('alert:cn1-abc', 30_000);
    if (!held) throw new Error('no claim');
    let done = false;
    const resolving = a.policy.alertResolved('cn1-abc').then(() => {
      done = true;
    });
    for (let waited = 0; waited < 2 * MIN; waited += 1_000) await clock.advance(1_000);
    expect(done).toBe(false);
    expect(a.logger.text()).toContain('an escalation input is still waiting');
    await held.release();
    await clock.advance(100);
    await resolving;
    expect(a.policy.entries()).toEqual([]);
    // Resolved before it was ever paged: nothing goes to the pager, now or later.
    await clock.advance(10 * MIN);
    expect(summary(a.intents)).toEqual([]);
  });

  it('gives up an input waiting for a claim when stopped, and says so', async () => {
    const { clock, store, a } = await twoReplicas();
    await a.policy.alertOpened(alertFacts(clock), clock.now());
    await store.claim('alert:cn1-abc', 30_000);
    const resolving = a.policy.alertResolved('cn1-abc');
    await clock.advance(100);
    a.policy.stop();
    await resolving;
    expect(a.logger.text()).toContain('an escalation input was not carried out');
    expect(a.logger.text()).toContain('alertResolved');
  });

  it('re-reads a shared store every resync; a store nobody shares needs no timer while nothing is due', async () => {
    const { clock, a, b } = await twoReplicas();
    await b.policy.approvalRequested(approvalFacts(clock));
    expect(a.policy.entries()).toEqual([]);
    await advance(clock, [a, b], DEFAULT_RESYNC_MS);
    expect(a.policy.entries().map((e) => e.facts.id)).toEqual([APPROVAL]);

    const lone = new ManualClock();
    const alone = escalationReplica('alone', createMemoryEscalationStore(), lone);
    await alone.policy.start();
    expect(lone.pending).toBe(0);
    expect(clock.pending).toBe(2);
  });
});
