import type { EscalationConfig } from '../../config/config.js';
import type { PagerSecrets } from '../../escalation/pager-env.js';
import type { Clock } from '../../ports/clock.js';
import type { Pager } from '../../ports/pager.js';
import { createOpsgeniePager } from './opsgenie-pager.js';
import { createPagerDutyPager } from './pagerduty-pager.js';
import { createPagerPoster } from './pager-http.js';
import { createWebhookPager } from './webhook-pager.js';

export interface PagerDeps {
  readonly clock: Clock;
  /** One request's time limit. Default 10 s. */
  readonly timeoutMs?: number;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
}

/** The configured pagers, in a fixed order: pagerduty, opsgenie, webhook. */
export function createPagers(escalation: EscalationConfig, secrets: PagerSecrets, deps: PagerDeps): Pager[] {
  const post = createPagerPoster({ clock: deps.clock, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const missing = (target: string) =>
    new Error(`createPagers: no secret for ${target} (call readPagerSecrets first)`);
  const pagers: Pager[] = [];
  if (escalation.pagerduty) {
    if (secrets.pagerduty === undefined) throw missing('pagerduty');
    pagers.push(
      createPagerDutyPager({ url: escalation.pagerduty.url, routingKey: secrets.pagerduty, timeoutMs, post }),
    );
  }
  if (escalation.opsgenie) {
    if (secrets.opsgenie === undefined) throw missing('opsgenie');
    pagers.push(
      createOpsgeniePager({ url: escalation.opsgenie.url, apiKey: secrets.opsgenie, timeoutMs, post }),
    );
  }
  if (escalation.webhook) {
    if (secrets.webhook === undefined) throw missing('webhook');
    pagers.push(
      createWebhookPager({ url: escalation.webhook.url, secret: secrets.webhook, timeoutMs, post }, () =>
        deps.clock.now(),
      ),
    );
  }
  return pagers;
}
