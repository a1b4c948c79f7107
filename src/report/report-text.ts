/**
 * The sentences of a run report that both renderers print (Block Kit in src/views/report.ts, Markdown in
 * src/report/markdown.ts), as plain text: each renderer escapes them for its own format.
 */
import { formatDuration } from '../config/duration.js';
import type { LeftBehind, RunReport } from './build-report.js';

/** `2026-11-26 03:00:04 UTC`. */
export function reportTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

export function recoveryText(report: RunReport): string {
  const { window, ms } = report.recovery;
  const from = `from ${window.startLabel} at ${reportTime(window.startAt)}`;
  if (ms === undefined || window.endAt === undefined) return `not recovered: ${window.endLabel} (${from})`;
  return `${formatDuration(ms)} ${from} to ${window.endLabel} at ${reportTime(window.endAt)}`;
}

export function missedText(report: RunReport): string {
  const m = report.missed;
  if (m.kind === 'unknown') return `unknown: ${m.reason}`;
  const range = m.first === undefined ? 'no blocks in the window' : `blocks ${m.first}–${m.last ?? m.first}`;
  const which = m.ranges.length > 0 ? ` (${m.ranges.join(', ')})` : '';
  const notes = [
    m.open ? 'the CN was not seen signing again, so counted up to the newest block' : '',
    m.truncated
      ? `only the last ${m.limit} blocks were read: the window's start is older, so the count is a lower bound`
      : '',
  ].filter((n) => n !== '');
  return `${m.missed} of ${m.examined} examined (${range}, read from ${m.source}, address ${m.address})${which}${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`;
}

export function leftBehindText(item: LeftBehind): string {
  return `${item.kind} on ${item.where}: ${item.text}`;
}

export function durationText(ms: number | undefined): string {
  return ms === undefined ? '' : formatDuration(ms);
}

export function reportTitle(report: RunReport): string {
  return `Report of run ${report.runId}: ${report.summary}${report.dryRun ? ' (dry run)' : ''}`;
}

export function alertText(report: RunReport): string {
  const i = report.incident;
  if (!i) return 'none linked (the run was not started while an alert was open for its node)';
  return `${i.kind} (alert ${i.id}), condition since ${reportTime(i.openedAt)}, posted ${reportTime(i.postedAt)}`;
}
