/**
 * The Slack app manifest asks for exactly the scopes the code needs: every Web API method cellops calls
 * is covered, and no scope is there that no call needs (least privilege).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/** The scope each Web API method needs (Slack's method reference); null for none. */
const SCOPE_OF: Record<string, string | null> = {
  'auth.test': null,
  'chat.getPermalink': null,
  'chat.postMessage': 'chat:write',
  'chat.update': 'chat:write',
  'chat.postEphemeral': 'chat:write',
  'usergroups.users.list': 'usergroups:read',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Web API methods named in calls: `apiCall('x.y'` and the Chat adapter's `call('x.y'`. */
function calledMethods(): Set<string> {
  const methods = new Set<string>();
  for (const file of sourceFiles('src')) {
    for (const match of readFileSync(file, 'utf8').matchAll(/\b(?:apiCall|call)\('([a-z]+\.[a-zA-Z.]+)'/g))
      methods.add(match[1]!);
  }
  return methods;
}

describe('Slack app manifest', () => {
  const manifest = parse(readFileSync('manifest.yml', 'utf8')) as {
    oauth_config: { scopes: { bot: string[] } };
    features: { slash_commands: { command: string }[] };
  };

  it('asks for exactly the bot scopes of the methods the code calls, and commands', () => {
    const methods = calledMethods();
    expect(methods.size).toBeGreaterThan(3);
    for (const method of methods) expect(SCOPE_OF, `scope of ${method}`).toHaveProperty([method]);
    const needed = new Set(['commands', ...[...methods].flatMap((m) => SCOPE_OF[m] ?? [])]);
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual([...needed].sort());
  });

  it('declares the slash commands the bot listens to', () => {
    expect(manifest.features.slash_commands.map((c) => c.command).sort()).toEqual(['/cell', '/failover']);
  });
});
