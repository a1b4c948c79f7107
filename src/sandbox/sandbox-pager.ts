/**
 * The sandbox's pager: no account and no secret, it records the pages cellops would send so that the
 * console's Pager panel can show them next to what the escalation policy is waiting for (an alert not
 * yet acknowledged, an approval not yet answered) and when it falls due.
 */
import type { EscalationEntry, EscalationSettings } from '../escalation/policy.js';
import { entryDueAt } from '../escalation/policy.js';
import type { Pager, PageEvent } from '../ports/pager.js';

/** Pages kept for the panel; older ones are forgotten. */
const KEPT = 50;

export interface PagerPanel {
  /** Newest first. */
  readonly sent: readonly {
    readonly at: number;
    readonly action: string;
    readonly key: string;
    readonly severity: string;
    readonly summary: string;
  }[];
  readonly waiting: readonly {
    readonly what: string;
    readonly state: string;
    /** When the next reminder or page is due (epoch ms), if any. */
    readonly dueAt?: number;
  }[];
}

export interface SandboxPager {
  readonly pager: Pager;
  panel(entries: readonly EscalationEntry[], settings: EscalationSettings): PagerPanel;
}

function describeEntry(entry: EscalationEntry): { what: string; state: string } {
  if (entry.kind === 'alert') {
    const { node, condition } = entry.facts;
    const state = entry.state === 'waiting' ? 'waiting for an Acknowledge in Slack' : entry.state;
    return { what: `${node} ${condition}`, state };
  }
  const { stepTitle, node } = entry.facts;
  const done =
    entry.done.length === 0 ? 'waiting for approval' : `waiting for approval (${entry.done.join(', ')} sent)`;
  return { what: `approval: ${stepTitle} (${node})`, state: done };
}

export function createSandboxPager(): SandboxPager {
  const sent: PageEvent[] = [];
  return {
    pager: {
      name: 'sandbox',
      send: async (event) => {
        sent.unshift(event);
        if (sent.length > KEPT) sent.length = KEPT;
      },
    },
    panel: (entries, settings) => ({
      sent: sent.map((e) => ({
        at: e.at,
        action: e.action,
        key: e.key,
        severity: e.severity,
        summary: e.summary,
      })),
      waiting: entries.map((entry) => {
        const dueAt = entryDueAt(settings, entry);
        return { ...describeEntry(entry), ...(dueAt === undefined ? {} : { dueAt }) };
      }),
    }),
  };
}
