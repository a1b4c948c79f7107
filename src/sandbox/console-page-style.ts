/** The console page's CSS: a Slack-like channel, thread pane and fault sidebar, under a sandbox banner. */
export const CONSOLE_PAGE_STYLE = `
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
  .pager { font-size:12px; max-height:40vh; overflow:auto; }
  .page-wait, .page-sent { padding:4px 6px; margin:3px 0; border-radius:4px; background:rgba(255,255,255,.08); }
  .page-trigger { border-left:3px solid #e01e5a; }
  .page-acknowledge { border-left:3px solid #ecb22e; }
  .page-resolve { border-left:3px solid #2eb67d; }
`;
