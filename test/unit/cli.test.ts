import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';

const EXAMPLE = new URL('../../cellops.example.yaml', import.meta.url).pathname;
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRq7Dl1Qc5mB9Yh8Qd3qH3m6wq0y1JQhW0mV8pT3rRk';

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runCli(args, env, (line) => lines.push(line));
  return { code, out: lines.join('\n') };
}

describe('cellops check-config', () => {
  it('prints the resolved inventory of a valid file', async () => {
    const { code, out } = await run(['check-config', EXAMPLE]);
    expect(code).toBe(0);
    expect(out).toMatch(/cn1\s+cn\s+10\.0\.1\.11/);
    expect(out).toContain('failover: standby cn1s; ip alias 10.0.1.100/24 on eth0');
    expect(out).toContain('configuration OK');
  });

  it("says how the snapshot-mode replacement's host key is learned, and whether known_hosts covers its subnet", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellops-cli-'));
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `10.0.2.* ${ED25519}\n`);
    const base = readFileSync(EXAMPLE, 'utf8').replace(/knownHosts: \S+/, `knownHosts: ${knownHosts}`);
    const consoleFile = join(dir, 'console.yaml');
    writeFileSync(consoleFile, base);
    const consoleOut = (await run(['check-config', consoleFile])).out;
    expect(consoleOut).toContain('replacement host key: console (pinned from EC2 GetConsoleOutput');
    expect(consoleOut).toContain('known_hosts matches 10.0.2.11');

    const strictFile = join(dir, 'strict.yaml');
    writeFileSync(strictFile, base.replace('hostKeys: console', 'hostKeys: known_hosts'));
    writeFileSync(knownHosts, `10.0.9.* ${ED25519}\n`);
    const strictOut = (await run(['check-config', strictFile])).out;
    expect(strictOut).toContain(
      'replacement host key: known_hosts only — known_hosts has no entry matching 10.0.2.11 (PROBLEM',
    );
  });

  it('prints every problem and exits 1 for a broken file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellops-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'cell: x\nslack: { channel: nope }\n');
    const { code, out } = await run(['check-config', file]);
    expect(code).toBe(1);
    expect(out).toContain(`${file}: slack.channel: "nope" must be a Slack channel id`);
    expect(out).toContain(`${file}: ssh: is required`);
  });

  it('reads CELLOPS_CONFIG when no file is given, and names a missing file', async () => {
    const { code, out } = await run(['check-config'], { CELLOPS_CONFIG: '/nonexistent/cellops.yaml' });
    expect(code).toBe(1);
    expect(out).toBe(
      '/nonexistent/cellops.yaml: file not found; set CELLOPS_CONFIG to your configuration file, or copy cellops.example.yaml',
    );
  });

  it('answers unknown commands with the usage', async () => {
    expect(await run(['frobnicate'])).toEqual({ code: 2, out: 'usage: cellops check-config [file]' });
  });
});
