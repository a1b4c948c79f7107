/**
 * The sandbox's web console: one HTML page that looks and behaves like a Slack channel. It renders the
 * Block Kit JSON the bot would send to Slack (sections, context, fields, headers, dividers, buttons with
 * confirm dialogs), shows threads in a side pane, takes slash commands, and offers fault buttons for the
 * simulated cell. Everything is marked as a sandbox. The markup is here; its CSS is console-page-style.ts
 * and its browser script console-page-script.ts.
 */
import { consolePageScript } from './console-page-script.js';
import { CONSOLE_PAGE_STYLE } from './console-page-style.js';

export interface ConsolePageOptions {
  readonly cell: string;
  readonly channel: string;
  readonly users: readonly { readonly id: string; readonly name: string; readonly role: string }[];
  readonly faultNodes: readonly string[];
  /** Buttons that act on the whole cell (posted to /api/fault with node "cell"), e.g. Reset cell. */
  readonly cellActions?: readonly { readonly fault: string; readonly label: string }[];
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function renderConsolePage(options: ConsolePageOptions): string {
  const users = options.users
    .map((u) => `<option value="${escapeHtml(u.id)}">${escapeHtml(u.name)} (${escapeHtml(u.role)})</option>`)
    .join('');
  const faults = options.faultNodes
    .map(
      (node) => `<div class="fault-row"><span class="fault-node">${escapeHtml(node)}</span>
        <button data-fault="stop" data-node="${escapeHtml(node)}">Stop</button>
        <button data-fault="stall" data-node="${escapeHtml(node)}">Stall</button>
        <button data-fault="isolate" data-node="${escapeHtml(node)}">Cut off peers</button>
        <button data-fault="heal" data-node="${escapeHtml(node)}">Bring back</button></div>`,
    )
    .join('');
  const cellActions = (options.cellActions ?? [])
    .map(
      (a) =>
        `<button class="cell-action" data-fault="${escapeHtml(a.fault)}" data-node="cell">${escapeHtml(a.label)}</button>`,
    )
    .join('');
  const userNames = JSON.stringify(Object.fromEntries(options.users.map((u) => [u.id, u.name])));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cellops sandbox — ${escapeHtml(options.cell)}</title>
<style>${CONSOLE_PAGE_STYLE}</style></head>
<body>
<div class="banner" id="banner">SANDBOX — a simulated Core Cell in this process. No Slack workspace, no real nodes, nothing real is touched.</div>
<div class="app">
  <aside class="side">
    <h1>cellops</h1><div class="sub">${escapeHtml(options.cell)} · sandbox</div>
    <div class="chan"># cell-ops <span style="opacity:.7">(${escapeHtml(options.channel)})</span></div>
    <h2>You are</h2><select id="user">${users}</select>
    <h2>Inject faults</h2>${faults}${cellActions ? `<div class="fault-row">${cellActions}</div>` : ''}
    <h2>Pager</h2>
    <div class="pager" id="pager"><div class="meta">Pages cellops would send to PagerDuty, Opsgenie or a webhook appear here; nothing is sent anywhere.</div></div>
  </aside>
  <section class="main">
    <div class="head"><span># cell-ops</span><span class="meta">sandbox</span></div>
    <div class="list" id="channel"></div>
    <div class="compose">
      <form id="compose"><input id="command" autocomplete="off" placeholder="/cell status · /failover cn1 · /cell drill failover cn1 · /cell help"><button type="submit">Send</button></form>
      <div class="hint">Slash commands work here as in Slack. Buttons in threads act as the user selected on the left.</div>
    </div>
  </section>
  <section class="thread" id="thread">
    <div class="head"><span>Thread</span><button id="close-thread" aria-label="Close thread">×</button></div>
    <div class="list" id="thread-list"></div>
  </section>
</div>
<script>${consolePageScript(userNames, options.channel)}</script>
</body></html>`;
}
