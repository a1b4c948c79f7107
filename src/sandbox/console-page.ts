/**
 * The sandbox's web console: one HTML page that looks and behaves like a Slack channel. It renders the
 * Block Kit JSON the bot would send to Slack (sections, context, fields, headers, dividers, buttons with
 * confirm dialogs), shows threads in a side pane, takes slash commands, and offers fault buttons for the
 * simulated cell. Everything is marked as a sandbox.
 */
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
<style>
  :root { --side:#3f0e40; --border:#e2e2e2; --muted:#616061; --blue:#1264a3; --green:#007a5a; --red:#e01e5a; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 -apple-system, "Segoe UI", Roboto, sans-serif; color:#1d1c1d; height:100vh; display:flex; flex-direction:column; }
  .banner { background:#e8a317; color:#1d1c1d; padding:6px 14px; font-weight:700; letter-spacing:.02em; }
  .app { flex:1; display:flex; min-height:0; }
  .side { width:250px; background:var(--side); color:#fff; padding:14px; overflow:auto; }
  .side h1 { font-size:18px; margin:0 0 4px; } .side .sub { opacity:.7; font-size:13px; margin-bottom:14px; }
  .side .chan { background:#1164a3; border-radius:6px; padding:4px 8px; margin-bottom:18px; }
  .side h2 { font-size:13px; text-transform:uppercase; opacity:.7; margin:14px 0 6px; }
  .fault-row { margin-bottom:8px; } .fault-node { display:inline-block; width:44px; font-weight:700; }
  .fault-row button { font-size:11px; margin:2px 1px; padding:2px 5px; border-radius:4px; border:0; cursor:pointer; }
  select { width:100%; padding:4px; border-radius:4px; }
  .main, .thread { display:flex; flex-direction:column; min-width:0; }
  .main { flex:1; border-right:1px solid var(--border); }
  .thread { width:44%; display:none; } .thread.open { display:flex; }
  .head { padding:10px 16px; border-bottom:1px solid var(--border); font-weight:700; display:flex; justify-content:space-between; }
  .head button { border:0; background:none; font-size:18px; cursor:pointer; }
  .list { flex:1; overflow:auto; padding:8px 0; }
  .msg { padding:6px 16px; display:flex; gap:10px; } .msg:hover { background:#f8f8f8; }
  .msg.eph { background:#f4f8fb; }
  .avatar { width:36px; height:36px; border-radius:6px; background:#2eb67d; color:#fff; display:flex; align-items:center; justify-content:center; font-weight:700; flex:none; }
  .avatar.you { background:#4a154b; }
  .who { font-weight:900; } .meta { color:var(--muted); font-size:12px; margin-left:6px; }
  .body { min-width:0; flex:1; }
  .blk { margin:4px 0; white-space:pre-wrap; overflow-wrap:anywhere; }
  .blk.header { font-size:17px; font-weight:900; }
  .blk.context { color:var(--muted); font-size:13px; }
  .blk.fields { display:grid; grid-template-columns:1fr 1fr; gap:4px 16px; }
  .blk.divider { border-top:1px solid var(--border); }
  .actions button { margin:4px 6px 0 0; padding:5px 12px; border-radius:4px; border:1px solid #bbb; background:#fff; font-weight:700; cursor:pointer; }
  .actions button.primary { background:var(--green); color:#fff; border-color:var(--green); }
  .actions button.danger { background:#fff; color:var(--red); border-color:var(--red); }
  code { background:#f6f6f6; border:1px solid #e8e8e8; border-radius:3px; padding:0 3px; font-size:13px; }
  pre { background:#f6f6f6; border:1px solid #e8e8e8; border-radius:4px; padding:8px; margin:4px 0; white-space:pre-wrap; font-size:12px; }
  .mention { background:#e8f5fa; color:var(--blue); border-radius:3px; padding:0 2px; }
  .replies { color:var(--blue); font-size:13px; font-weight:700; cursor:pointer; margin-top:4px; }
  .compose { border-top:1px solid var(--border); padding:10px 16px; }
  .compose form { display:flex; gap:8px; }
  .compose input { flex:1; padding:9px; border:1px solid #bbb; border-radius:6px; font-size:15px; }
  .compose button { padding:8px 14px; border-radius:6px; border:0; background:var(--green); color:#fff; font-weight:700; }
  .hint { color:var(--muted); font-size:12px; margin-top:4px; }
  .edited { color:var(--muted); font-size:11px; }
</style></head>
<body>
<div class="banner" id="banner">SANDBOX — a simulated Core Cell in this process. No Slack workspace, no real nodes, nothing real is touched.</div>
<div class="app">
  <aside class="side">
    <h1>cellops</h1><div class="sub">${escapeHtml(options.cell)} · sandbox</div>
    <div class="chan"># cell-ops <span style="opacity:.7">(${escapeHtml(options.channel)})</span></div>
    <h2>You are</h2><select id="user">${users}</select>
    <h2>Inject faults</h2>${faults}${cellActions ? `<div class="fault-row">${cellActions}</div>` : ''}
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
<script>
const USERS = ${userNames};
// The emoji shortcodes cellops' messages use, as Slack shows them; unknown ones stay as text.
const EMOJI = {"x": "❌", "white_check_mark": "✅", "arrow_forward": "▶️", "octagonal_sign": "🛑", "warning": "⚠️", "stopwatch": "⏱️", "red_circle": "🔴", "raised_hand": "✋", "no_entry": "⛔", "lock": "🔒", "bell": "🔔", "white_circle": "⚪", "test_tube": "🧪", "mute": "🔇", "large_yellow_circle": "🟡", "eyes": "👀", "double_vertical_bar": "⏸️", "rotating_light": "🚨", "no_bell": "🔕", "loud_sound": "🔊", "leftwards_arrow_with_hook": "↩️", "large_green_circle": "🟢", "information_source": "ℹ️", "hourglass_flowing_sand": "⏳", "hourglass": "⌛", "grey_question": "❔", "fast_forward": "⏩", "ballot_box_with_check": "☑️", "arrows_counterclockwise": "🔄", "heavy_check_mark": "✔️", "no_entry_sign": "🚫", "wrench": "🔧", "rewind": "⏪"};
const CHANNEL = ${JSON.stringify(options.channel)};
const messages = new Map();
let openThread = null;
const $ = (id) => document.getElementById(id);
const me = () => $('user').value;

function esc(t) { return String(t).replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;'); }
function mrkdwn(text) {
  // Slack escapes &, < and > itself; undo that first, then render our own escaped HTML.
  let t = String(text).replace(/&lt;/g,'<').replace(/&gt;/g,'>').replace(/&amp;/g,'&');
  const parts = [];
  t = t.replace(/\`\`\`([\\s\\S]*?)\`\`\`/g, (_, code) => { parts.push('<pre>' + esc(code) + '</pre>'); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  t = t.replace(/\`([^\`]+)\`/g, (_, code) => { parts.push('<code>' + esc(code) + '</code>'); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  t = t.replace(/<@([A-Z0-9_]+)>/g, (_, id) => { parts.push('<span class="mention">@' + esc(USERS[id] || id) + '</span>'); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  t = t.replace(/<#([CG][A-Z0-9]+)(?:\\|([^>]*))?>/g, (_, id, label) => { parts.push('<span class="mention">#' + esc(label || (id === CHANNEL ? 'cell-ops' : id)) + '</span>'); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  // Slack shows <!date^EPOCH^{tokens}|fallback> in the reader's time zone.
  t = t.replace(/<!date\\^(\\d+)\\^[^|>]*(?:\\|([^>]*))?>/g, (_, epoch, fallback) => { const d = new Date(Number(epoch) * 1000); parts.push(esc(isNaN(d.getTime()) ? (fallback || epoch) : d.toLocaleString())); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  t = t.replace(/<!subteam\\^([A-Z0-9]+)(?:\\|([^>]*))?>/g, (_, id, label) => { parts.push('<span class="mention">' + esc(label || '@' + id) + '</span>'); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  t = t.replace(/<(https?:[^|>]+|\\/[^|>]*)\\|([^>]+)>/g, (_, url, label) => { parts.push('<a href="' + esc(url) + '">' + esc(label) + '</a>'); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  t = t.replace(/<(https?:[^>]+)>/g, (_, url) => { parts.push('<a href="' + esc(url) + '">' + esc(url) + '</a>'); return '\\u0000' + (parts.length - 1) + '\\u0000'; });
  t = esc(t).replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m).replace(/\\*([^*\\n]+)\\*/g, '<b>$1</b>').replace(/(^|\\s)_([^_\\n]+)_/g, '$1<i>$2</i>').replace(/~([^~\\n]+)~/g, '<s>$1</s>');
  return t.replace(/\\u0000(\\d+)\\u0000/g, (_, i) => parts[Number(i)]);
}
function textOf(obj) { if (!obj) return ''; return obj.type === 'plain_text' ? esc(obj.text).replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m) : mrkdwn(obj.text); }
function renderBlocks(msg) {
  if (!msg.blocks || msg.blocks.length === 0) return '<div class="blk">' + mrkdwn(msg.text) + '</div>';
  return msg.blocks.map((b) => {
    switch (b.type) {
      case 'header': return '<div class="blk header">' + textOf(b.text) + '</div>';
      case 'divider': return '<div class="blk divider"></div>';
      case 'context': return '<div class="blk context">' + (b.elements || []).map((e) => e.type === 'image' ? '' : textOf(e)).join(' · ') + '</div>';
      case 'section': {
        let html = b.text ? '<div class="blk">' + textOf(b.text) + '</div>' : '';
        if (b.fields) html += '<div class="blk fields">' + b.fields.map((f) => '<div>' + textOf(f) + '</div>').join('') + '</div>';
        if (b.accessory && b.accessory.type === 'button') html += '<div class="blk actions">' + button(b.accessory, msg) + '</div>';
        return html;
      }
      case 'actions': return '<div class="blk actions">' + (b.elements || []).filter((e) => e.type === 'button').map((e) => button(e, msg)).join('') + '</div>';
      case 'markdown': return '<div class="blk">' + mrkdwn(b.text || '') + '</div>';
      case 'rich_text': return '<div class="blk">' + esc(msg.text) + '</div>';
      default: return '';
    }
  }).join('');
}
function button(e, msg) {
  const data = encodeURIComponent(JSON.stringify({ action_id: e.action_id, value: e.value || '', confirm: e.confirm || null, ts: msg.ts, thread: msg.threadTs || msg.ts }));
  return '<button class="' + (e.style || '') + '" data-action="' + data + '">' + esc(e.text && e.text.text || 'Button') + '</button>';
}
function visible(m) { return !m.onlyFor || m.onlyFor === me(); }
function renderMessage(m) {
  const replies = [...messages.values()].filter((r) => r.threadTs === m.ts && visible(r)).length;
  const you = m.onlyFor ? ' <span class="meta">Only visible to you</span>' : '';
  const time = new Date(m.at).toLocaleTimeString();
  return '<div class="msg' + (m.onlyFor ? ' eph' : '') + '" id="msg-' + m.ts + '"><div class="avatar">co</div><div class="body">' +
    '<span class="who">cellops</span><span class="meta">' + time + ' · sandbox</span>' + you +
    renderBlocks(m) + (m.edited ? '<div class="edited">(edited)</div>' : '') +
    (!m.threadTs && replies > 0 ? '<div class="replies" data-thread="' + m.ts + '">' + replies + (replies === 1 ? ' reply' : ' replies') + '</div>' : '') +
    '</div></div>';
}
function render() {
  const all = [...messages.values()].filter(visible).sort((a, b) => a.ts.localeCompare(b.ts));
  const list = $('channel');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.innerHTML = all.filter((m) => !m.threadTs).map(renderMessage).join('');
  if (atBottom) list.scrollTop = list.scrollHeight;
  if (openThread) {
    const parent = messages.get(openThread);
    const tl = $('thread-list');
    const tAtBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 40;
    tl.innerHTML = (parent ? renderMessage({ ...parent, threadTs: parent.ts }) : '') + all.filter((m) => m.threadTs === openThread).map(renderMessage).join('');
    if (tAtBottom) tl.scrollTop = tl.scrollHeight;
  }
}
function showThread(ts) { openThread = ts; $('thread').classList.add('open'); render(); }
document.addEventListener('click', async (ev) => {
  const target = ev.target.closest('[data-action],[data-thread],[data-fault]');
  if (!target) return;
  if (target.dataset.thread) { showThread(target.dataset.thread); return; }
  if (target.dataset.fault) {
    await fetch('/api/fault', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: target.dataset.node, fault: target.dataset.fault, user: me() }) });
    return;
  }
  const action = JSON.parse(decodeURIComponent(target.dataset.action));
  if (action.confirm && !window.confirm((action.confirm.title ? action.confirm.title.text + '\\n\\n' : '') + (action.confirm.text ? action.confirm.text.text : ''))) return;
  await fetch('/api/action', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ actionId: action.action_id, value: action.value, user: me(), messageTs: action.ts, threadTs: action.thread }) });
});
$('close-thread').addEventListener('click', () => { openThread = null; $('thread').classList.remove('open'); });
$('user').addEventListener('change', render);
$('compose').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = $('command').value.trim();
  if (!text) return;
  $('command').value = '';
  await fetch('/api/command', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text, user: me() }) });
});
const events = new EventSource('/api/events');
events.onmessage = (ev) => {
  const event = JSON.parse(ev.data);
  if (event.type === 'message') { messages.set(event.message.ts, event.message); render(); }
};
</script>
</body></html>`;
}
