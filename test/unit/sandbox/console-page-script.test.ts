/**
 * The sandbox console's renderer, run as the browser runs it (the page script in a VM context with a
 * minimal DOM): crafted text is shown as text, never as markup or attributes, and `<url|text>` becomes a
 * link only as Slack makes one (http(s) URLs; the sandbox's own message anchors).
 */
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { consolePageScript } from '../../../src/sandbox/console-page-script.js';
import { escapeText } from '../../../src/views/kit.js';

interface Renderer {
  mrkdwn(text: string): string;
  renderBlocks(message: { text: string; ts: string; blocks: unknown[] }): string;
}

function renderer(users: Record<string, string> = { U0AAA: 'Alice' }, channel = 'C0ALERTS'): Renderer {
  const element = () => ({
    addEventListener: () => undefined,
    classList: { add: () => undefined },
    value: '',
  });
  const context: Record<string, unknown> = {
    document: { getElementById: element, addEventListener: () => undefined },
    window: {},
    EventSource: class {},
    // The page polls its Pager panel; the renderer under test never needs the timer to fire.
    setInterval: () => 0,
    fetch: () => new Promise(() => undefined),
  };
  runInNewContext(consolePageScript(JSON.stringify(users), channel), context);
  return context as unknown as Renderer;
}

/** What a view sends for a user's argument echoed back: Slack-escaped text (src/views/kit.ts). */
/** The start tags in `html` (text is escaped, so a "<" in text never starts one). */
const tags = (html: string): string[] => html.match(/<[a-z][^>]*>/g) ?? [];

const echoed = (argument: string) => `Unknown node \`x\`: ${escapeText(argument)}`;

describe('sandbox console renderer', () => {
  it('shows a crafted argument as text: no element, no attribute, no link', () => {
    const { mrkdwn } = renderer();
    for (const crafted of [
      '<https://evil.example/" onmouseover="alert(1)|click>',
      '"><img src=x onerror=alert(1)>',
      '<javascript:alert(1)|x>',
      '<@U0AAA" onclick="alert(1)>',
      '\u00000\u0000',
    ]) {
      const html = mrkdwn(echoed(crafted));
      expect(tags(html), crafted).toEqual(['<code>']);
      expect(html, crafted).not.toContain('"');
    }
    expect(mrkdwn(echoed('<b>&"\''))).toContain('&lt;b&gt;&amp;&quot;&#39;');
  });

  it("links http(s) URLs and the sandbox's anchors only, with the text escaped", () => {
    const { mrkdwn } = renderer();
    expect(mrkdwn('<https://slack.example/archives/C1/p1|Follow its thread>')).toBe(
      '<a href="https://slack.example/archives/C1/p1" rel="noopener noreferrer">Follow its thread</a>',
    );
    expect(mrkdwn('</#msg-1700000000.000001|Follow its thread>')).toContain('href="/#msg-1700000000.000001"');
    expect(mrkdwn('<https://x.example|a &lt;b&gt; "c">')).toContain('>a &lt;b&gt; &quot;c&quot;</a>');
    expect(mrkdwn('<javascript:alert(1)|x>')).not.toContain('<a');
    expect(mrkdwn('<ftp://x.example|x>')).not.toContain('<a');
    expect(mrkdwn('<https://x.example/"onclick="y|x>')).not.toContain('<a');
  });

  it('renders mentions, bold and code as before', () => {
    const { mrkdwn } = renderer();
    expect(mrkdwn('*Approved* by <@U0AAA> `cn1`')).toBe(
      '<b>Approved</b> by <span class="mention">@Alice</span> <code>cn1</code>',
    );
  });

  it('keeps a user or channel name from closing the script element', () => {
    const script = consolePageScript(JSON.stringify({ U1: '</script><script>alert(1)</script>' }), 'C1');
    expect(script).not.toContain('</script>');
  });

  it('escapes button styles and values into attributes', () => {
    const { renderBlocks } = renderer();
    const html = renderBlocks({
      text: 'x',
      ts: '1.1',
      blocks: [
        {
          type: 'actions',
          elements: [
            {
              type: 'button',
              action_id: 'a',
              style: 'x" onclick="y',
              value: '"><i>',
              text: { type: 'plain_text', text: '<b>' },
            },
          ],
        },
      ],
    });
    // Attribute names, once the quoted values are taken out.
    for (const tag of tags(html)) expect(tag.replace(/"[^"]*"/g, '""')).not.toMatch(/\son\w+=/);
    expect(tags(html).map((t) => t.split(/[\s>]/)[0])).toEqual(['<div', '<button']);
    expect(html).toContain('&lt;b&gt;');
  });
});
