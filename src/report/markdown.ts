/**
 * A run report as Markdown, for `cellops report <run>` and for pasting into a post-mortem. Pure.
 * People appear by their Slack user id: the terminal has no directory to name them.
 */
import type { RunReport, TimelineEntry } from './build-report.js';
import {
  alertText,
  durationText,
  leftBehindText,
  missedText,
  recoveryText,
  reportTime,
  reportTitle,
} from './report-text.js';

/** Keeps a table cell on one line and its pipes from splitting it. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

function timelineRow(e: TimelineEntry): string {
  return `| ${[
    reportTime(e.at).slice(11, 19),
    e.who ?? '',
    e.text,
    durationText(e.durationMs),
    (e.targets ?? []).join(', '),
  ]
    .map(cell)
    .join(' | ')} |`;
}

export function renderReportMarkdown(report: RunReport): string {
  const lines: string[] = [
    `# ${cell(reportTitle(report))}`,
    '',
    `- Runbook: ${report.runbook} on ${report.node}`,
    `- Status: ${report.status}${report.error ? ` — ${cell(report.error)}` : ''}`,
    `- Requested by: ${report.requester} at ${reportTime(report.createdAt)}`,
    ...(report.endedAt === undefined ? [] : [`- Ended: ${reportTime(report.endedAt)}`]),
    `- Alert: ${alertText(report)}`,
    `- Time to recover: ${recoveryText(report)}`,
    `- Blocks missed: ${missedText(report)}`,
    '',
    `## Timeline (${reportTime(report.timeline[0]?.at ?? report.createdAt).slice(0, 10)}, UTC)`,
    '',
    '| time | who | what | took | on |',
    '| --- | --- | --- | --- | --- |',
    ...report.timeline.map(timelineRow),
    '',
    '## Steps',
    '',
    '| step | status | took | on | approved by |',
    '| --- | --- | --- | --- | --- |',
    ...report.steps.map(
      (s) =>
        `| ${[
          s.title,
          s.status,
          durationText(s.durationMs),
          s.targets.join(', '),
          s.approvals.map((a) => `${a.user} (${a.decision}, ${reportTime(a.at).slice(11, 19)})`).join(', '),
        ]
          .map(cell)
          .join(' | ')} |`,
    ),
    '',
    '## Left behind',
    '',
    ...(report.leftBehind.length === 0
      ? ['Nothing recorded.']
      : report.leftBehind.map((item) => `- ${leftBehindText(item)}`)),
    ...(report.cleanupHint ? ['', report.cleanupHint] : []),
    '',
    `_Generated ${reportTime(report.generatedAt)}._`,
  ];
  return lines.join('\n');
}
