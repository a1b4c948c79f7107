/**
 * Answers to `/cell` commands and refusals: status table, runs list, help, lock-busy, errors. Pure
 * functions; the sandbox console renders the same output.
 */
import type { CellView, NodeView } from '../monitor/types.js';
import { describeProtection, isProtected, type CnProtection } from '../monitor/protection.js';
import type { CnRoles } from '../ports/cell-state.js';
import type { RunRecord } from '../runbooks/types.js';
import type { LockHolder } from '../locks/types.js';
import type { Block } from '../ports/chat.js';
import { formatDuration } from '../config/duration.js';
import { redactThenTruncate } from '../infra/redact.js';
import {
  clockTime,
  context,
  dateTime,
  escapeText,
  mention,
  message,
  section,
  type RenderedMessage,
} from './kit.js';

const CONDITION_ICON: Record<NodeView['condition'], string> = {
  healthy: ':large_green_circle:',
  lagging: ':large_yellow_circle:',
  'standby-lagging': ':large_yellow_circle:',
  stalled: ':red_circle:',
  down: ':red_circle:',
  isolated: ':red_circle:',
  unknown: ':white_circle:',
};

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** A monospace table; cells are escaped (they end up inside a ``` block in mrkdwn). */
function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => pad(cell, widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function activeRunLine(run: RunRecord, now: number): string {
  return `${mention(run.requester)} · *${escapeText(run.summary)}* · ${run.status} for ${formatDuration(now - run.createdAt)} · run \`${escapeText(run.id)}\``;
}

export interface InventoryNode {
  readonly name: string;
  readonly role: string;
}

/**
 * `/cell status`: one line per node (role, condition, height, lag, peers) and the runs in progress.
 * `view` is undefined when the monitor is not running; the inventory is shown instead.
 */
export function renderStatus(input: {
  readonly cell: string;
  readonly view: CellView | undefined;
  readonly inventory: readonly InventoryNode[];
  readonly activeRuns: readonly RunRecord[];
  readonly now: number;
}): RenderedMessage {
  const { view, now } = input;
  const blocks: Block[] = [];
  if (view === undefined) {
    blocks.push(
      section(`*${escapeText(input.cell)}* — monitoring is not running, so heights and health are unknown.`),
    );
    const rows = [['node', 'role'], ...input.inventory.map((n) => [n.name, n.role])];
    blocks.push(section(`\`\`\`\n${escapeText(table(rows))}\n\`\`\``));
  } else {
    const ref = view.referenceHeight === undefined ? 'unknown' : `#${view.referenceHeight}`;
    blocks.push(section(`*${escapeText(input.cell)}* — reference height ${ref} (at ${clockTime(view.at)})`));
    const rows: string[][] = [['', 'node', 'role', 'condition', 'height', 'lag', 'CN peers', 'notes']];
    for (const node of view.nodes) {
      const notes: string[] = [];
      if (node.servedBy) notes.push(`served by ${node.servedBy}`);
      if (node.standbyOf) notes.push(`standby of ${node.standbyOf}`);
      if (node.since !== undefined && node.condition !== 'healthy')
        notes.push(`since ${clockTime(node.since)}`);
      if (node.mutedUntil !== undefined && node.mutedUntil > now)
        notes.push(`muted until ${clockTime(node.mutedUntil)}`);
      if (node.lastError && node.condition !== 'healthy') notes.push(redactThenTruncate(node.lastError, 80));
      rows.push([
        node.condition === 'healthy' ? 'ok' : '!!',
        node.node,
        node.role,
        node.condition,
        node.height === undefined ? '—' : String(node.height),
        node.lag === undefined ? '—' : String(node.lag),
        node.cnPeers === undefined ? '—' : String(node.cnPeers),
        notes.join('; '),
      ]);
    }
    blocks.push(section(`\`\`\`\n${escapeText(table(rows))}\n\`\`\``));
    if (view.protection && view.protection.length > 0) blocks.push(protectionSection(view.protection));
    const unhealthy = view.nodes.filter((n) => n.condition !== 'healthy');
    if (unhealthy.length > 0) {
      blocks.push(
        context([
          unhealthy
            .map((n) => `${CONDITION_ICON[n.condition]} ${escapeText(n.node)} ${n.condition}`)
            .join('  '),
        ]),
      );
    }
  }
  blocks.push(
    section(
      input.activeRuns.length === 0
        ? 'No run in progress.'
        : `*In progress:*\n${input.activeRuns.map((r) => activeRunLine(r, now)).join('\n')}`,
    ),
  );
  return message(`${escapeText(input.cell)} status`, blocks);
}

/** Each CN: the machine serving it and how well it is protected against its next failure. */
function protectionSection(protection: readonly CnProtection[]): Block {
  const lines = protection.map((p) => {
    const icon = isProtected(p) ? ':large_green_circle:' : ':large_yellow_circle:';
    const roles = p.rolesRunId === 'config' ? '' : ` (roles from run \`${escapeText(p.rolesRunId)}\`)`;
    const failures = p.checkFailures?.length
      ? ` · last check: ${escapeText(redactThenTruncate(p.checkFailures.join('; '), 200))}`
      : '';
    return `${icon} *${escapeText(p.cn)}* served by ${escapeText(p.servedBy)} — ${escapeText(describeProtection(p))}${roles}${failures}`;
  });
  return section(`*Protection*\n${lines.join('\n')}`);
}

/** `/cell roles <cn>`: who does what now, and every recorded change, newest first. */
export function renderRoles(input: {
  readonly cn: string;
  readonly current: CnRoles;
  readonly history: readonly CnRoles[];
}): RenderedMessage {
  const { cn, current, history } = input;
  const standby = current.standby === undefined ? 'no standby' : `standby ${current.standby}`;
  const now = `*Roles of ${escapeText(cn)}*: served by *${escapeText(current.servedBy)}*, ${escapeText(standby)}`;
  const blocks: Block[] = [];
  if (history.length === 0) {
    blocks.push(section(`${now}.\nNo change recorded: the configuration's layout holds.`));
  } else {
    const former =
      current.formerServers.length > 0
        ? `\nServed before by ${current.formerServers.map(escapeText).join(', ')} (most recent first).`
        : '';
    blocks.push(section(`${now}, since ${dateTime(current.since)}.${former}`));
    const lines = history.map((r) => {
      const by = r.by === 'cellops' || r.by === 'config' ? r.by : mention(r.by);
      const sb = r.standby === undefined ? 'no standby' : `standby ${escapeText(r.standby)}`;
      return `${dateTime(r.since)} · served by ${escapeText(r.servedBy)}${r.address ? ` (${escapeText(r.address)})` : ''} · ${sb} · run \`${escapeText(r.runId)}\` · ${by} · ${escapeText(r.reason)}`;
    });
    blocks.push(section('*History* (newest first)'));
    for (let i = 0; i < lines.length; i += 10) blocks.push(section(lines.slice(i, i + 10).join('\n')));
  }
  return message(
    `Roles of ${escapeText(cn)}: served by ${escapeText(current.servedBy)}, ${escapeText(standby)}`,
    blocks,
  );
}

/** `/cell runs`: the latest runs, newest first. */
export function renderRunsList(runs: readonly RunRecord[], now: number): RenderedMessage {
  if (runs.length === 0) return message('No runs yet.', [section('No runs yet.')]);
  const lines = runs.map((run) => {
    const took = formatDuration((run.endedAt ?? now) - run.createdAt);
    return `\`${escapeText(run.id)}\` ${escapeText(run.summary)}${run.dryRun ? ' (dry run)' : ''} — *${run.status}* · ${mention(run.requester)} · ${dateTime(run.createdAt)} · ${took}`;
  });
  const blocks: Block[] = [section(`*Latest runs*`)];
  // One section per ten runs keeps each under the 3,000-character limit without cutting a line.
  for (let i = 0; i < lines.length; i += 10) blocks.push(section(lines.slice(i, i + 10).join('\n')));
  return message(`Latest ${runs.length} runs`, blocks);
}

/** The commands `/cell help` lists: the /failover usage line and each command with what it does. */
export interface HelpUsage {
  readonly failover: string;
  readonly commands: readonly (readonly [string, string])[];
}

export function renderHelp(usage: HelpUsage): RenderedMessage {
  const lines = [
    `\`${escapeText(usage.failover)}\` — fail over a consensus node; \`--dry-run\` shows the plan and runs the read-only preflight; \`--force\` fails over a healthy CN (switchover)`,
    ...usage.commands.map(([command, what]) => `\`${escapeText(command)}\` — ${what}`),
  ];
  return message('cellops commands', [section('*cellops commands*'), section(lines.join('\n'))]);
}

/** The answer when the lock is held: who holds it, for what, since when, and where to follow it. */
export function renderLockBusy(
  holder: LockHolder | undefined,
  permalink: string | undefined,
  now: number,
): RenderedMessage {
  if (holder === undefined) {
    const text = 'Another run holds the cell lock; try again when it has finished (`/cell status` shows it).';
    return message(text, [section(text)]);
  }
  const link = permalink ? ` <${permalink.replace(/[<>|]/g, '')}|Follow its thread>.` : '';
  const text =
    `:lock: Not started: *${escapeText(holder.runbook)}* on *${escapeText(holder.node)}* is already running ` +
    `(run \`${escapeText(holder.runId)}\`), started by ${mention(holder.requester)} at ${clockTime(holder.since)} ` +
    `(${formatDuration(Math.max(0, now - holder.since))} ago). Only one runbook runs at a time.${link}`;
  return message(text.replace(/:lock: /, ''), [section(text)]);
}

/** An input error with the correct usage. */
export function renderUsageError(problem: string, usage: readonly string[], hint?: string): RenderedMessage {
  const lines = [
    `:warning: ${escapeText(problem)}`,
    `Usage: ${usage.map((u) => `\`${escapeText(u)}\``).join(' · ')}`,
  ];
  if (hint) lines.push(escapeText(hint));
  return message(`${escapeText(problem)}`, [section(lines.join('\n'))]);
}

/** A one-line notice (refusals, confirmations). `mrkdwn` is escaped by the caller. */
export function renderNotice(mrkdwn: string): RenderedMessage {
  return message(mrkdwn, [section(mrkdwn)]);
}
