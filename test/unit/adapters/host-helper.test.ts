import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DESTRUCTIVE_VERBS, fenceScope, helperCall } from '../../../src/adapters/host-helper/helper-verbs.js';
import { createHostHelperShell, helperCommand } from '../../../src/adapters/host-helper/host-helper-shell.js';
import { SafetyGateError } from '../../../src/errors.js';
import { privilegedScript, sh, shTemplate, type ShellCommand } from '../../../src/ports/shell-command.js';
import type { ExecOptions, Shell } from '../../../src/ports/shell.js';
import { nodeCommands } from '../../../src/runbooks/node-ops.js';
import { rebuildCommands } from '../../../src/runbooks/rebuild-ops.js';
import { SNAPSHOT_OPERATIONS } from '../../../src/runbooks/snapshot-ops.js';
import { testConfig } from '../../support/bot-fixtures.js';

const HELPER = '/usr/local/sbin/cellops-host';
const templates = {
  serviceCommand: 'sudo -n systemctl {action} {service}',
  attachCommand: 'sudo -n {binary} attach --exec {js} {dataDir}/klay.ipc',
};
const options = { helperPath: HELPER, ...templates };
const fence = { scope: 'my-cell', token: 42 };
const config = testConfig();
const KEY = '/var/kcnd/data/klay/nodekey';

describe('the host helper verbs', () => {
  it('stands for every privileged command form the runbooks build, operands unchanged', () => {
    const cases: [ShellCommand, string, string[]][] = [
      [nodeCommands.exists(KEY), 'exists', [KEY]],
      [nodeCommands.read(KEY), 'read', [KEY]],
      [nodeCommands.write(KEY), 'write', [KEY]],
      [nodeCommands.sha256(KEY), 'sha256', [KEY]],
      [nodeCommands.mtime(KEY), 'mtime', [KEY]],
      [nodeCommands.move(KEY, `${KEY}.cellops-r1`), 'move', [KEY, `${KEY}.cellops-r1`]],
      [nodeCommands.remove(KEY, '/var/kcnd/data'), 'remove', [KEY]],
      [nodeCommands.ipAddr('add', '10.0.1.100/24', 'eth0'), 'ip-add', ['10.0.1.100/24', 'eth0']],
      [nodeCommands.ipAddr('del', '10.0.1.100/24', 'eth0'), 'ip-del', ['10.0.1.100/24', 'eth0']],
      [nodeCommands.ipShow('eth0'), 'ip-show', ['eth0']],
      [nodeCommands.gratuitousArp('eth0', '10.0.1.100'), 'arping', ['eth0', '10.0.1.100']],
      [nodeCommands.sync(), 'sync', []],
      [nodeCommands.fsfreeze('freeze', '/var/kpnd/data'), 'freeze', ['/var/kpnd/data']],
      [nodeCommands.fsfreeze('unfreeze', '/var/kpnd/data'), 'thaw', ['/var/kpnd/data']],
      [nodeCommands.processAlive('kcn'), 'pgrep', ['kcn']],
      [nodeCommands.service(config, 'stop', 'kcnd'), 'service', ['stop', 'kcnd']],
      [nodeCommands.service(config, 'is-active', 'kcnd'), 'service', ['is-active', 'kcnd']],
      [rebuildCommands.freeSpace('/var/kcnd/data'), 'free-space', ['/var/kcnd/data']],
      [rebuildCommands.listAside('/var/kcnd/data'), 'list-aside', ['/var/kcnd/data']],
      [rebuildCommands.createPrivate(KEY), 'create-private', [KEY]],
      [rebuildCommands.randomKey(KEY), 'random-key', [KEY]],
      [rebuildCommands.size(KEY), 'size', [KEY]],
      [
        privilegedScript('mount-data', 'set -eu', ['vol-0abc', '/dev/sdf', '/var/kcnd/data']),
        'mount-data',
        ['vol-0abc', '/dev/sdf', '/var/kcnd/data'],
      ],
    ];
    for (const [command, verb, args] of cases)
      expect(helperCall(command, templates), command).toMatchObject({ verb, args });
    for (const name of SNAPSHOT_OPERATIONS)
      expect(helperCall(privilegedScript(name, 'exit 0', ['/x']), templates)?.verb).toBe(name);
  });

  it('reads the operator templates for services and IPC, whatever program they name', () => {
    const custom = {
      serviceCommand: 'sudo -n /bin/systemctl --no-pager {action} {service}.service',
      attachCommand: templates.attachCommand,
    };
    const command = shTemplate(custom.serviceCommand, { action: 'start', service: 'kcnd' });
    expect(helperCall(command, custom)).toEqual({
      verb: 'service',
      args: ['start', 'kcnd'],
      destructive: true,
    });
    const attach = shTemplate(templates.attachCommand, {
      binary: 'kcn',
      js: 'admin.nodeInfo',
      dataDir: '/var/kcnd/data',
    });
    expect(helperCall(attach, templates)).toEqual({
      verb: 'attach',
      args: ['kcn', 'admin.nodeInfo', '/var/kcnd/data'],
      destructive: false,
    });
  });

  it('maps nothing else: other tools, shell syntax, other scripts, other flags', () => {
    for (const command of [
      sh`sudo -n bash -c ${'id'}`,
      sh`sudo -n sh -c ${'rm -rf /'} cellops-anything /`,
      sh`sudo -n rm -rf -- ${'/var/kcnd/data'}`,
      sh`sudo -n cat ${KEY}`,
      `sudo -n cat -- ${KEY}; id` as ShellCommand,
      `sudo -n cat -- $(id)` as ShellCommand,
      sh`sudo cat -- ${KEY}`,
      sh`cat -- ${KEY}`,
    ])
      expect(helperCall(command, templates), command).toBeUndefined();
  });

  it('knows the same destructive verbs as the helper script, which refuses them without a token', () => {
    const script = readFileSync(new URL('../../../deploy/host/cellops-host', import.meta.url), 'utf8');
    const listed = /^DESTRUCTIVE_VERBS='([a-z -]+)'$/m.exec(script)?.[1]?.split(' ') ?? [];
    expect(new Set(listed)).toEqual(DESTRUCTIVE_VERBS);
  });

  it('names a cell in a form the helper takes, hashing names it would refuse', () => {
    expect(fenceScope('my-core-cell')).toBe('my-core-cell');
    const odd = fenceScope('my cell/../x');
    expect(odd).toMatch(/^cell-[0-9a-f]{16}$/);
    expect(fenceScope('my cell/../x')).toBe(odd);
    expect(fenceScope('-rf')).toMatch(/^cell-/);
  });
});

describe('the host helper shell', () => {
  it('runs the helper verb with the fencing token instead of the tool', () => {
    const command = helperCommand(nodeCommands.move(KEY, `${KEY}.aside`), options, fence);
    expect(command).toBe(`sudo -n ${HELPER} --fence my-cell:42 move ${KEY} ${KEY}.aside`);
    expect(helperCommand(nodeCommands.exists(KEY), options, undefined)).toBe(
      `sudo -n ${HELPER} exists ${KEY}`,
    );
    expect(helperCommand(sh`true`, options, undefined)).toBe('true');
  });

  it('refuses, before sending anything, a command the helper has no verb for and a destructive one without a token', async () => {
    const sent: string[] = [];
    const inner: Shell = {
      exec: (_host, command: ShellCommand, _options?: ExecOptions) => {
        sent.push(command);
        return Promise.resolve({ exitCode: 0, stdout: '', stderr: '', truncated: false, durationMs: 1 });
      },
      close: () => Promise.resolve(),
    };
    const shell = createHostHelperShell(inner, options);
    const host = { name: 'cn1', address: '10.0.1.11' };
    await expect(shell.exec(host, sh`sudo -n bash -c ${'id'}`)).rejects.toThrow(SafetyGateError);
    await expect(shell.exec(host, nodeCommands.write(KEY), { stdin: 'x' })).rejects.toThrow(/fencing token/);
    await expect(shell.exec(host, nodeCommands.service(config, 'start', 'kcnd'))).rejects.toThrow(
      /fencing token/,
    );
    expect(sent).toEqual([]);
    await shell.exec(host, nodeCommands.write(KEY), { stdin: 'x', fence });
    await shell.exec(host, nodeCommands.service(config, 'is-active', 'kcnd'));
    expect(sent).toEqual([
      `sudo -n ${HELPER} --fence my-cell:42 write ${KEY}`,
      `sudo -n ${HELPER} service is-active kcnd`,
    ]);
  });
});
