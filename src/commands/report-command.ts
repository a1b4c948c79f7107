/**
 * `/cell report <run>` and the alert a failover answers. The report is posted in the run's thread, where
 * the people who followed the run read it; a run without a thread (a drill in the console, a message that
 * was never posted) gets it as the reply. A failover started while its CN has an open alert keeps that
 * alert with the run, because a resolved incident is deleted and the report needs when it began.
 */
import type { Chat } from '../ports/chat.js';
import type { IncidentStore } from '../monitor/incidents.js';
import type { ReportSource } from '../report/gather-report.js';
import type { RunIncident } from '../runbooks/types.js';
import { InputError } from '../errors.js';
import { renderReport } from '../views/report.js';
import { escapeText, mention, type RenderedMessage } from '../views/kit.js';
import { renderNotice } from '../views/cell.js';

export interface ReportCommandDeps {
  readonly reports?: ReportSource | undefined;
  readonly chat: Pick<Chat, 'permalink'> & Partial<Pick<Chat, 'post'>>;
}

export type ReportOutcome =
  /** Posted in the run's thread; the reply says where. */
  | { readonly kind: 'posted'; readonly notice: RenderedMessage }
  /** No thread to post in: the report is the reply. */
  | { readonly kind: 'reply'; readonly report: RenderedMessage };

export async function reportCommand(
  deps: ReportCommandDeps,
  runId: string,
  user: string,
): Promise<ReportOutcome> {
  if (!deps.reports) throw new InputError('Reports are not available in this process; nothing was posted.');
  const report = await deps.reports.report(runId);
  if (report === undefined) throw new InputError(`There is no run ${runId} (see /cell runs).`);
  const rendered = renderReport(report);
  const thread = report.thread;
  if (!thread || !deps.chat.post) return { kind: 'reply', report: rendered };
  await deps.chat.post({ channel: thread.channel, threadTs: thread.ts, ...rendered });
  const link = await deps.chat.permalink(thread).catch(() => undefined);
  return {
    kind: 'posted',
    notice: renderNotice(
      `:memo: ${mention(user)} posted the report of run \`${escapeText(runId)}\` in ${link ? `<${link}|its thread>` : 'its thread'}.`,
    ),
  };
}

/** The open alert about `node` as the run keeps it, or undefined when there is none (or no store). */
export async function openIncidentOf(
  incidents: Pick<IncidentStore, 'get'> | undefined,
  node: string,
): Promise<RunIncident | undefined> {
  const record = await incidents?.get(node);
  if (!record) return undefined;
  return {
    id: record.id,
    kind: record.kind,
    openedAt: record.openedAt,
    postedAt: record.createdAt,
    ...(record.message ? { message: { channel: record.message.channel, ts: record.message.ts } } : {}),
  };
}
