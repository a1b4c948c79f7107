/**
 * Every configuration value that reaches a command on a node is shaped at load: `cellops check-config`
 * refuses each hostile value below, naming the file and the key and saying what would be right.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../../../src/cli.js';

const EXAMPLE = readFileSync(new URL('../../../cellops.example.yaml', import.meta.url), 'utf8');

// The YAML document is untyped by nature; the tests set values by key path.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawDoc = Record<string, any>;

function setAt(doc: RawDoc, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() as string;
  let at = doc;
  for (const key of keys) at = at[key] as RawDoc;
  at[last] = value;
}

async function checkConfig(
  path: string,
  value: unknown,
): Promise<{ code: number; out: string; file: string }> {
  const doc = parse(EXAMPLE) as RawDoc;
  setAt(doc, path, value);
  const file = join(mkdtempSync(join(tmpdir(), 'cellops-hostile-')), 'cellops.yaml');
  writeFileSync(file, stringify(doc));
  const lines: string[] = [];
  const code = await runCli(
    ['check-config', file],
    {},
    { out: (line) => lines.push(line), err: (line) => lines.push(line) },
  );
  return { code, out: lines.join('\n'), file };
}

const CASES: ReadonlyArray<readonly [key: string, value: string, right: RegExp]> = [
  ['nodes.cn1.dataDir', '/var/kcnd/data\nUUID=x /etc ext4', /plain path/],
  ['nodes.cn1.dataDir', '/var/kcnd/../../etc', /\. or \.\. segments/],
  ['nodes.cn1.dataDir', '/', /not be \/ itself/],
  ['nodes.cn1.dataDir', '/.', /\. or \.\. segments/],
  ['nodes.cn1.dataDir', '//var/kcnd', /\/\//],
  ['nodes.cn1.dataDir', '/var/./kcnd', /\. or \.\. segments/],
  ['nodes.cn1.dataDir', '/var/kcnd data', /plain path/],
  ['nodes.cn1.dataDir', 'var/kcnd/data', /absolute path/],
  ['nodes.cn1.dataDir', '/var/$(reboot)', /plain path/],
  ['nodes.cn1.dataDir', '/var/kcnd/data/', /end with \//],
  ['nodes.cn2.dataDevice', '/dev/sda', /\/dev\/sdf, \/dev\/xvdf or \/dev\/nvme1n1/],
  ['nodes.cn2.dataDevice', '/dev/sdf;reboot', /data device/],
  ['nodes.cn2.dataDevice', '/dev/nvme0n1p1', /data device/],
  ['nodes.cn2.failover.launch.dataDevice', '/dev/xvda', /data device/],
  ['nodes.cn1.service', '-kcnd', /letter or digit/],
  ['nodes.cn1.service', 'kcnd;reboot', /systemd unit name/],
  ['nodes.cn1.service', 'kcnd\n', /systemd unit name/],
  ['nodes.cn1.failover.ip.device', '-eth0', /interface name/],
  ['nodes.cn1.failover.ip.device', 'eth0 up', /interface name/],
  ['nodes.cn1.failover.nodekeyBackup.path', 'backup/cn1.nodekey', /absolute path/],
  ['nodes.cn1.failover.nodekeyBackup.path', '/var/cellops/../../root/.ssh/authorized_keys', /\.\. segments/],
  ['nodes.cn1.failover.nodekeyBackup.path', '/var/cellops/backup/cn1 key', /plain path/],
  ['nodes.cn1.host', '-oProxyCommand=reboot', /host name or IP address/],
  ['ssh.serviceCommand', "sudo -n systemctl {action} '{service}'", /contains "'"/],
  ['ssh.serviceCommand', 'sudo -n systemctl {action} {service}; reboot', /contains ";"/],
  ['ssh.serviceCommand', 'sudo -n systemctl {action} $SERVICE', /contains "\$"/],
  ['ssh.serviceCommand', 'sudo -n `id` {action} {service}', /contains "`"/],
  ['ssh.serviceCommand', 'systemctl {action} {service} | tee x', /contains "\|"/],
  ['ssh.serviceCommand', 'systemctl {action} {service} & reboot', /contains "&"/],
  ['ssh.serviceCommand', 'systemctl {action} {service}\nreboot', /contains "\\n"/],
  ['ssh.serviceCommand', 'systemctl {acton} {service}', /unknown placeholder \{acton\}/],
  ['ssh.attachCommand', 'sudo -n {binary} attach --exec "{js}" {dataDir}/klay.ipc', /contains "\\""/],
  ['ssh.attachCommand', 'sudo -n {binary} attach --exec {js} {dataDir}/klay.ipc > /tmp/x', /contains ">"/],
  ['ssh.passphraseEnv', 'SSH PASS', /environment variable name/],
];

describe('check-config refuses values that would reach a command misshapen', () => {
  it.each(CASES)('%s = %j', async (key, value, right) => {
    const { code, out, file } = await checkConfig(key, value);
    expect(code).toBe(1);
    const line = out.split('\n').find((l) => l.startsWith(`${file}: ${key}: `));
    expect(line, out).toBeDefined();
    expect(line).toMatch(right);
  });

  it('needs a key file unless the ssh-agent is used', async () => {
    const without = await checkConfig('ssh.privateKey', undefined);
    expect(without.out).toContain(
      `${without.file}: ssh.privateKey: is required (the path of the key file), unless ssh.agent is true`,
    );
    const doc = parse(EXAMPLE) as RawDoc;
    delete doc.ssh.privateKey;
    doc.ssh.agent = true;
    const file = join(mkdtempSync(join(tmpdir(), 'cellops-hostile-')), 'cellops.yaml');
    writeFileSync(file, stringify(doc));
    const lines: string[] = [];
    expect(
      await runCli(
        ['check-config', file],
        {},
        { out: (line) => lines.push(line), err: (line) => lines.push(line) },
      ),
    ).toBe(0);
  });

  it('accepts the plain forms of the same keys', async () => {
    for (const [key, value] of [
      ['nodes.cn1.dataDir', '/data/kcnd+1@x/chain_data-2'],
      ['nodes.cn2.dataDevice', '/dev/nvme1n1'],
      ['nodes.cn2.failover.launch.dataDevice', '/dev/xvdf'],
      ['nodes.cn1.service', 'kcnd@main.service'],
      ['nodes.cn1.failover.ip.device', 'ens5.100'],
      ['ssh.serviceCommand', 'sudo -n /usr/local/bin/svc {service} {action}'],
    ] as const) {
      const { code, out } = await checkConfig(key, value);
      expect(out, `${key} = ${value}`).toContain('configuration OK');
      expect(code).toBe(0);
    }
  });
});
