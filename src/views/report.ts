/**
 * A run report (src/report/build-report.ts) as a Slack message for the run's thread. Pure. The summary
 * (status, alert, time to recover, missed blocks) comes first; the timeline follows in sections of whole
 * lines, within Slack's limits, and what was left behind last.
 */
import type { Block } from '../ports/chat.js';
import type { RunReport, TimelineEntry } from '../report/build-report.js';
import {
  alertText,
  durationText,
  leftBehindText,
  missedText,
  recoveryText,
  reportTime,
  reportTitle,
} from '../report/report-text.js';
import {
  LIMITS,
  context,
  divider,
  escapeText,
  fieldsSection,
  header,
  mention,
  message,
  section,
  type RenderedMessage,
} from './kit.js';

/** Sections the timeline may take, so that the left-behind list still fits in 50 blocks. */
const TIMELINE_SECTIONS = 30;

function who(entry: TimelineEntry): string {
  if (entry.who === undefined) return '';
  return entry.who === 'cellops' ? 'cellops ' : `${mention(entry.who)} `;
}

function timelineLine(e: TimelineEntry): string {
  const took = e.durationMs === undefined ? '' : ` — ${durationText(e.durationMs)}`;
  const on = e.targets && e.targets.length > 0 ? ` — ${escapeText(e.targets.join(', '))}` : '';
  return `\`${reportTime(e.at).slice(11, 19)}\` ${who(e)}${escapeText(e.text)}${took}${on}`;
}

/** Whole lines packed into sections of at most the section limit. */
function packLines(lines: readonly string[], max: number): string[] {
  const chunks: string[] = [];
  let current = '';
  for (const line of lines) {
    const next = current === '' ? line : `${current}\n${line}`;
    if (next.length > max && current !== '') {
      chunks.push(current);
      current = line;
    } else current = next;
  }
  if (current !== '') chunks.push(current);
  return chunks;
}

export function renderReport(report: RunReport): RenderedMessage {
  const timeline = packLines(report.timeline.map(timelineLine), LIMITS.sectionText - 100);
  const shown = timeline.slice(0, TIMELINE_SECTIONS);
  const blocks: Block[] = [
    header(reportTitle(report)),
    fieldsSection([
      `*Status*\n${escapeText(report.status)}${report.error ? `: ${escapeText(report.error)}` : ''}`,
      `*Requested by*\n${mention(report.requester)} at ${reportTime(report.createdAt)}`,
      `*Alert*\n${escapeText(alertText(report))}`,
      `*Time to recover*\n${escapeText(recoveryText(report))}`,
      `*Blocks missed*\n${escapeText(missedText(report))}`,
    ]),
    divider(),
    section('*Timeline* (UTC)'),
    ...shown.map((text) => section(text)),
    ...(timeline.length > shown.length
      ? [
          context([
            `_${timeline.length - shown.length} more timeline sections not shown: \`cellops report ${escapeText(report.runId)}\` prints all of it._`,
          ]),
        ]
      : []),
    divider(),
    section(
      `*Left behind*\n${
        report.leftBehind.length === 0
          ? 'Nothing recorded.'
          : report.leftBehind.map((item) => `• ${escapeText(leftBehindText(item))}`).join('\n')
      }`,
    ),
    ...(report.cleanupHint ? [context([escapeText(report.cleanupHint)])] : []),
  ];
  const fallback = `${reportTitle(report)}: ${report.status}; time to recover ${recoveryText(report)}; blocks missed ${missedText(report)}`;
  return message(fallback, blocks);
}
