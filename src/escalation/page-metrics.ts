/**
 * Metrics of page delivery, registered on the registry the caller passes (the one `/metrics` serves), so
 * a failing pager shows on a dashboard even when nobody reads the Slack note.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PageAction } from '../ports/pager.js';

export const PAGE_OUTCOMES = ['delivered', 'failed', 'dropped'] as const;
export type PageOutcome = (typeof PAGE_OUTCOMES)[number];

export interface PageMetrics {
  count(target: string, action: PageAction, outcome: PageOutcome): void;
  retried(target: string): void;
  setQueueDepth(target: string, depth: number): void;
}

export function createPageMetrics(registry: Registry, prefix = 'cellops_'): PageMetrics {
  const pages = new Counter({
    name: `${prefix}pages_total`,
    help: 'Page events by target, action (trigger, acknowledge, resolve) and outcome (delivered, failed after retries, dropped from a full queue)',
    labelNames: ['target', 'action', 'outcome'],
    registers: [registry],
  });
  const retries = new Counter({
    name: `${prefix}page_retries_total`,
    help: 'Page deliveries retried after a 429, 5xx, timeout or network failure',
    labelNames: ['target'],
    registers: [registry],
  });
  const depth = new Gauge({
    name: `${prefix}page_queue_depth`,
    help: 'Page events waiting for delivery per target (the one being sent included)',
    labelNames: ['target'],
    registers: [registry],
  });
  return {
    count: (target, action, outcome) => pages.inc({ target, action, outcome }),
    retried: (target) => retries.inc({ target }),
    setQueueDepth: (target, value) => depth.set({ target }, value),
  };
}
