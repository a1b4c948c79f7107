import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PagerError } from '../../../src/escalation/pager-error.js';
import { parseRetryAfter, scrubSecrets } from '../../../src/adapters/pager/pager-http.js';
import { backoffMs, createPageDispatcher, DEFAULT_RETRY } from '../../../src/escalation/dispatcher.js';
import type { Pager, PageEvent } from '../../../src/ports/pager.js';
import { flushPromises, ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';

const event = (action: PageEvent['action'], key: string): PageEvent => ({
  action,
  key,
  summary: `${action} ${key}`,
  severity: 'critical',
  cell: 'c',
  at: 0,
});

/** A pager whose sends stay pending until the test releases them. */
function heldPager(name: string) {
  const sent: string[] = [];
  const waiting: (() => void)[] = [];
  const pager: Pager = {
    name,
    send: (e) =>
      new Promise<void>((resolve) => {
        sent.push(`${e.action} ${e.key}`);
        waiting.push(resolve);
      }),
  };
  const releaseAll = async () => {
    while (waiting.length > 0) {
      waiting.shift()?.();
      await flushPromises();
    }
  };
  return { pager, sent, releaseAll };
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>) {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe('page dispatcher', () => {
  it('drops the oldest queued trigger when the queue is full, never an acknowledge or resolve', async () => {
    const held = heldPager('pd');
    const registry = new Registry();
    const dropped: string[] = [];
    const dispatcher = createPageDispatcher({
      pagers: [held.pager],
      clock: new ManualClock(),
      logger: new RecordingLogger(),
      registry,
      queueLimit: 3,
      onFailure: (_t, e, error) => {
        dropped.push(`${e.action} ${e.key} ${(error as PagerError).code}`);
      },
    });
    dispatcher.dispatch(event('trigger', 'a')); // in flight
    dispatcher.dispatch(event('trigger', 'b'));
    dispatcher.dispatch(event('resolve', 'z'));
    dispatcher.dispatch(event('acknowledge', 'a')); // full: b gives way
    dispatcher.dispatch(event('trigger', 'c')); // full of a, resolve, ack: c is refused
    expect(dispatcher.depth('pd')).toBe(3);
    expect(await metricValue(registry, 'cellops_page_queue_depth', { target: 'pd' })).toBe(3);
    await held.releaseAll();
    await dispatcher.idle();
    expect(held.sent).toEqual(['trigger a', 'resolve z', 'acknowledge a']);
    expect(dropped).toEqual(['trigger b pager_queue_full', 'trigger c pager_queue_full']);
    expect(
      await metricValue(registry, 'cellops_pages_total', { action: 'trigger', outcome: 'dropped' }),
    ).toBe(2);
    expect(await metricValue(registry, 'cellops_page_queue_depth', { target: 'pd' })).toBe(0);
  });

  it('sends each target its events in order, and a slow target does not hold up another', async () => {
    const slow = heldPager('slow');
    const fast: string[] = [];
    const dispatcher = createPageDispatcher({
      pagers: [slow.pager, { name: 'fast', send: async (e) => void fast.push(`${e.action} ${e.key}`) }],
      clock: new ManualClock(),
      logger: new RecordingLogger(),
      registry: new Registry(),
    });
    dispatcher.dispatch(event('trigger', 'a'));
    dispatcher.dispatch(event('acknowledge', 'a'));
    dispatcher.dispatch(event('resolve', 'a'));
    await flushPromises();
    expect(fast).toEqual(['trigger a', 'acknowledge a', 'resolve a']);
    expect(slow.sent).toEqual(['trigger a']);
    await slow.releaseAll();
    expect(slow.sent).toEqual(['trigger a', 'acknowledge a', 'resolve a']);
  });

  it('survives a pager that throws anything and a callback that throws', async () => {
    const logger = new RecordingLogger();
    const dispatcher = createPageDispatcher({
      pagers: [
        {
          name: 'broken',
          send: () => {
            throw new TypeError('bug');
          },
        },
      ],
      clock: new ManualClock(),
      logger,
      registry: new Registry(),
      onFailure: () => {
        throw new Error('callback bug');
      },
    });
    expect(() => dispatcher.dispatch(event('trigger', 'a'))).not.toThrow();
    await dispatcher.idle();
    expect(logger.text()).toContain('the onFailure callback failed');
  });

  it('gives up after the configured attempts, waiting on the clock between them', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const failures: string[] = [];
    const dispatcher = createPageDispatcher({
      pagers: [
        {
          name: 'down',
          send: async () => {
            calls++;
            throw new PagerError('pager_unavailable', 'down', 'down: HTTP 503');
          },
        },
      ],
      clock,
      logger: new RecordingLogger(),
      registry: new Registry(),
      retry: { attempts: 3 },
      random: () => 1,
      onFailure: (t, e) => void failures.push(`${t} ${e.key}`),
    });
    dispatcher.dispatch(event('trigger', 'a'));
    await flushPromises();
    expect(calls).toBe(1);
    await clock.advance(999);
    expect(calls).toBe(1);
    await clock.advance(1);
    expect(calls).toBe(2);
    await clock.advance(2_000);
    expect(calls).toBe(3);
    expect(failures).toEqual(['down a']);
  });

  it('abandons waiting retries on close', async () => {
    const clock = new ManualClock();
    const dispatcher = createPageDispatcher({
      pagers: [
        {
          name: 'down',
          send: async () => {
            throw new PagerError('pager_rate_limited', 'down', 'down: 429', { retryAfterMs: 60_000 });
          },
        },
      ],
      clock,
      logger: new RecordingLogger(),
      registry: new Registry(),
    });
    dispatcher.dispatch(event('trigger', 'a'));
    await flushPromises();
    expect(clock.pending).toBe(1);
    await dispatcher.close();
    expect(clock.pending).toBe(0);
    expect(dispatcher.depth('down')).toBe(0);
  });

  it('backs off exponentially within bounds', () => {
    expect(backoffMs(DEFAULT_RETRY, 1, () => 0)).toBe(500);
    expect(backoffMs(DEFAULT_RETRY, 3, () => 0.999999)).toBe(4_000);
    expect(backoffMs(DEFAULT_RETRY, 20, () => 1)).toBe(60_000);
  });
});

describe('pager HTTP helpers', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    expect(parseRetryAfter('30', now)).toBe(30_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:12 GMT', now)).toBe(12_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('scrubs a secret however the answer spells it', () => {
    const secret = 'a/b"c';
    expect(
      scrubSecrets(`x ${secret} ${JSON.stringify(secret)} ${encodeURIComponent(secret)}`, [secret]),
    ).not.toMatch(/a\/b|a%2Fb/);
  });
});
