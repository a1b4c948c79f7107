/**
 * The console page's browser script: renders the Block Kit messages streamed from /api/events as Slack
 * would (mrkdwn, emoji, buttons with confirm dialogs, threads) and posts commands, button clicks and
 * faults back to the console server. `userNames` is the JSON of user id → display name.
 */
/** JSON inside a <script>: "<" as \u003c, so no value can close the script element. */
function scriptJson(json: string): string {
  return json.replace(/</g, '\\u003c');
}

export function consolePageScript(userNames: string, channel: string): string {
  return `
const USERS = ${scriptJson(userNames)};
// The emoji shortcodes cellops' messages use, as Slack shows them; unknown ones stay as text.
const EMOJI = {"x": "❌", "white_check_mark": "✅", "arrow_forward": "▶️", "octagonal_sign": "🛑", "warning": "⚠️", "stopwatch": "⏱️", "red_circle": "🔴", "raised_hand": "✋", "no_entry": "⛔", "lock": "🔒", "bell": "🔔", "white_circle": "⚪", "test_tube": "🧪", "mute": "🔇", "large_yellow_circle": "🟡", "eyes": "👀", "double_vertical_bar": "⏸️", "rotating_light": "🚨", "no_bell": "🔕", "loud_sound": "🔊", "leftwards_arrow_with_hook": "↩️", "large_green_circle": "🟢", "information_source": "ℹ️", "hourglass_flowing_sand": "⏳", "hourglass": "⌛", "grey_question": "❔", "fast_forward": "⏩", "ballot_box_with_check": "☑️", "arrows_counterclockwise": "🔄", "heavy_check_mark": "✔️", "no_entry_sign": "🚫", "wrench": "🔧", "rewind": "⏪"};
const CHANNEL = ${scriptJson(JSON.stringify(channel))};
const messages = new Map();
let openThread = null;
const $ = (id) => document.getElementById(id);
const me = () => $('user').value;

function esc(t) { return String(t).replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;').replace(/"/g,'&quot;').replace(/'/g,'&#39;'); }
// Slack's own escapes (&amp; &lt; &gt;) back to characters, for text that is then escaped as HTML.
function unslack(t) { return String(t).replace(/&lt;/g,'<').replace(/&gt;/g,'>').replace(/&amp;/g,'&'); }
// Links as Slack makes them: http(s) URLs only; and the sandbox's own permalinks, anchors in this page.
function safeUrl(url) { return /^https?:\\/\\/[^\\s"'<>]+$/i.test(url) || /^\\/#msg-[0-9.]+$/.test(url) ? url : null; }
function token(inner) {
  const bar = inner.indexOf('|');
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? '' : unslack(inner.slice(bar + 1));
  let m;
  if ((m = /^@([A-Z0-9_]+)$/.exec(target))) return '<span class="mention">@' + esc(USERS[m[1]] || m[1]) + '</span>';
  if ((m = /^#([CG][A-Z0-9]+)$/.exec(target))) return '<span class="mention">#' + esc(label || (m[1] === CHANNEL ? 'cell-ops' : m[1])) + '</span>';
  // Slack shows <!date^EPOCH^{tokens}|fallback> in the reader's time zone.
  if ((m = /^!date\\^(\\d+)\\^/.exec(target))) { const d = new Date(Number(m[1]) * 1000); return esc(isNaN(d.getTime()) ? (label || m[1]) : d.toLocaleString()); }
  if ((m = /^!subteam\\^([A-Z0-9]+)$/.exec(target))) return '<span class="mention">' + esc(label || '@' + m[1]) + '</span>';
  const url = safeUrl(unslack(target));
  if (url) return '<a href="' + esc(url) + '" rel="noopener noreferrer">' + esc(label || url) + '</a>';
  return null;
}
function mrkdwn(text) {
  // Markup (<…>) is read from the text as sent, before Slack's escapes are undone: a "<" typed by a user
  // arrives as "&lt;" and stays text; it never becomes a link, a mention or an attribute.
  let t = String(text).replace(/\\u0000/g, '');
  const parts = [];
  const keep = (html) => { parts.push(html); return '\\u0000' + (parts.length - 1) + '\\u0000'; };
  t = t.replace(/\`\`\`([\\s\\S]*?)\`\`\`/g, (_, code) => keep('<pre>' + esc(unslack(code)) + '</pre>'));
  t = t.replace(/\`([^\`]+)\`/g, (_, code) => keep('<code>' + esc(unslack(code)) + '</code>'));
  t = t.replace(/<([^<>]*)>/g, (whole, inner) => keep(token(inner) ?? esc(unslack(whole))));
  t = esc(unslack(t)).replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m).replace(/\\*([^*\\n]+)\\*/g, '<b>$1</b>').replace(/(^|\\s)_([^_\\n]+)_/g, '$1<i>$2</i>').replace(/~([^~\\n]+)~/g, '<s>$1</s>');
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
  return '<button class="' + esc(e.style || '') + '" data-action="' + esc(data) + '">' + esc(e.text && e.text.text || 'Button') + '</button>';
}
function visible(m) { return !m.onlyFor || m.onlyFor === me(); }
function renderMessage(m) {
  const replies = [...messages.values()].filter((r) => r.threadTs === m.ts && visible(r)).length;
  const you = m.onlyFor ? ' <span class="meta">Only visible to you</span>' : '';
  const time = new Date(m.at).toLocaleTimeString();
  return '<div class="msg' + (m.onlyFor ? ' eph' : '') + '" id="msg-' + esc(m.ts) + '"><div class="avatar">co</div><div class="body">' +
    '<span class="who">cellops</span><span class="meta">' + time + ' · sandbox</span>' + you +
    renderBlocks(m) + (m.edited ? '<div class="edited">(edited)</div>' : '') +
    (!m.threadTs && replies > 0 ? '<div class="replies" data-thread="' + esc(m.ts) + '">' + replies + (replies === 1 ? ' reply' : ' replies') + '</div>' : '') +
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
// The Pager panel: what escalation waits for, and the pages it would have sent (newest first).
async function refreshPager() {
  try {
    const panel = await (await fetch('/api/pager')).json();
    const waiting = panel.waiting.map((w) => '<div class="page-wait">⏳ ' + esc(w.what) + ' — ' + esc(w.state) + (w.dueAt ? ' · next at ' + esc(new Date(w.dueAt).toLocaleTimeString()) : '') + '</div>');
    const sent = panel.sent.map((p) => '<div class="page-sent page-' + esc(p.action) + '"><b>' + esc(p.action) + '</b> ' + esc(p.severity) + ' · ' + esc(new Date(p.at).toLocaleTimeString()) + '<br>' + esc(p.summary) + '</div>');
    const body = waiting.concat(sent).join('');
    $('pager').innerHTML = body || '<div class="meta">Nothing waiting, nothing paged. Stall a node and leave its alert unacknowledged to see a page.</div>';
  } catch { /* the next refresh tries again */ }
}
refreshPager();
setInterval(refreshPager, 2000);
const events = new EventSource('/api/events');
events.onmessage = (ev) => {
  const event = JSON.parse(ev.data);
  if (event.type === 'message') { messages.set(event.message.ts, event.message); render(); }
};
`;
}
