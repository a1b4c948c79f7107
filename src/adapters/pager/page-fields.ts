import type { PageEvent } from '../../ports/pager.js';

/**
 * The page's facts as flat strings, for PagerDuty's custom_details and Opsgenie's details (which accepts
 * only string values). Times are ISO 8601 in UTC so a phone in any time zone reads them unambiguously.
 */
export function pageDetails(event: PageEvent): Record<string, string> {
  const details: Record<string, string> = { cell: event.cell };
  if (event.node !== undefined) details.node = event.node;
  if (event.condition !== undefined) details.condition = event.condition;
  if (event.since !== undefined) details.since = new Date(event.since).toISOString();
  if (event.lag !== undefined) details.lag = `${event.lag} blocks`;
  if (event.threadUrl !== undefined) details.thread = event.threadUrl;
  for (const [key, value] of Object.entries(event.details ?? {})) details[key] = String(value);
  return details;
}
