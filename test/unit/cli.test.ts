import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli.js';
import { packageVersion } from '../../src/cli/package-version.js';

const EXAMPLE = new URL('../../cellops.example.yaml', import.meta.url).pathname;
const PACKAGE = new URL('../../package.json', import.meta.url);
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRq7Dl1Qc5mB9Yh8Qd3qH3m6wq0y1JQhW0mV8pT3rRk';

async function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, env, { out: (line) => out.push(line), err: (line) => err.push(line) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('cellops check-config', () => {
  it('prints the resolved inventory of a valid file', async () => {
    const { code, out } = await run(['check-config', EXAMPLE]);
    expect(code).toBe(0);
    expect(out).toMatch(/cn1\s+cn\s+10\.0\.1\.11/);
    expect(out).toContain('failover: standby cn1s; ip alias 10.0.1.100/24 on eth0');
    expect(out).toContain('privileges: plain sudo -n as ');
    expect(out).toContain('configuration OK');
  });

  it('says whether privileged work goes through the host helper', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellops-cli-'));
    const file = join(dir, 'helper.yaml');
    writeFileSync(
      file,
      readFileSync(EXAMPLE, 'utf8').replace(
        '# hostHelper: /usr/local/sbin/cellops-host',
        'hostHelper: /usr/local/sbin/cellops-host',
      ),
    );
    const { code, out } = await run(['check-config', file]);
    expect(code).toBe(0);
    expect(out).toMatch(
      /privileges: the host helper \/usr\/local\/sbin\/cellops-host as \S+, with each run's fencing token/,
    );
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        'hostHelper: /usr/local/sbin/cellops-host',
        'hostHelper: cellops-host',
      ),
    );
    const bad = await run(['check-config', file]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/ssh\.hostHelper/);
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

  it('prints every problem on stderr and exits 1 for a broken file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellops-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'cell: x\nslack: { channel: nope }\n');
    const { code, out, err } = await run(['check-config', file]);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toContain(`${file}: slack.channel: "nope" must be a Slack channel id`);
    expect(err).toContain(`${file}: ssh: is required`);
  });

  it('reads CELLOPS_CONFIG when no file is given, and names a missing file', async () => {
    const { code, err } = await run(['check-config'], { CELLOPS_CONFIG: '/nonexistent/cellops.yaml' });
    expect(code).toBe(1);
    expect(err).toBe(
      '/nonexistent/cellops.yaml: file not found; set CELLOPS_CONFIG to your configuration file, or copy cellops.example.yaml',
    );
  });

  it('answers extra arguments with its usage and status 2', async () => {
    const { code, err } = await run(['check-config', 'a.yaml', 'b.yaml']);
    expect(code).toBe(2);
    expect(err).toContain('usage: cellops check-config [file]');
  });
});

describe('cellops usage', () => {
  it('prints the help with every command on --help and -h, status 0', async () => {
    for (const flag of ['--help', '-h']) {
      const { code, out, err } = await run([flag]);
      expect(code).toBe(0);
      expect(err).toBe('');
      for (const command of ['check-config [file]', 'runs', 'audit <run>', 'report <run>']) {
        expect(out).toContain(command);
      }
    }
  });

  it('prints the version of package.json on --version and -V', async () => {
    const { version } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { version: string };
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
    for (const flag of ['--version', '-V'])
      expect(await run([flag])).toEqual({ code: 0, out: version, err: '' });
  });

  it('answers an unknown command, an unknown option or a misplaced one on stderr with status 2', async () => {
    const unknown = await run(['frobnicate']);
    expect(unknown).toMatchObject({ code: 2, out: '' });
    expect(unknown.err).toContain('cellops: unknown command "frobnicate"');
    expect(unknown.err).toContain('cellops --help');

    const flag = await run(['runs', '--frob']);
    expect(flag).toMatchObject({ code: 2, out: '' });
    expect(flag.err).toContain("Unknown option '--frob'");

    expect((await run(['check-config', '--json'])).err).toContain('check-config does not take --json');
    expect((await run(['runs', '--limit', 'many'])).err).toContain('--limit: "many" is not a whole number');
    expect((await run(['audit'])).err).toContain('usage: cellops audit <run>');
    expect((await run([])).code).toBe(2);
  });
});
