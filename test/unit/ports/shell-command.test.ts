import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { operand, quoteArg, raw, sh, shTemplate } from '../../../src/ports/shell-command.js';

/** What a real POSIX shell passes as the one argument `quoted` stands for. */
function wordSeenBySh(quoted: string): string {
  const result = spawnSync('sh', ['-c', `printf '%s' ${quoted}`], { encoding: 'utf8' });
  expect(result.status).toBe(0);
  return result.stdout;
}

describe('shell commands', () => {
  it('leaves plain words as they are and quotes everything else', () => {
    expect(quoteArg('/var/kcnd/data/klay/nodekey')).toBe('/var/kcnd/data/klay/nodekey');
    expect(quoteArg('cn1; rm -rf /')).toBe(`'cn1; rm -rf /'`);
    expect(quoteArg(`it's`)).toBe(`'it'\\''s'`);
    expect(quoteArg('')).toBe(`''`);
    expect(quoteArg('$(reboot)')).toBe(`'$(reboot)'`);
  });

  it('quotes interpolated values and keeps literal parts', () => {
    const path = '/tmp/a b';
    expect(sh`sudo -n install -m 0600 /dev/stdin ${path}`).toBe(
      `sudo -n install -m 0600 /dev/stdin '/tmp/a b'`,
    );
    expect(sh`ls ${['a', 'b c']}`).toBe(`ls a 'b c'`);
    expect(sh`echo ${raw(sh`x ${'y z'}`)}`).toBe(`echo x 'y z'`);
  });

  it('fills configured templates with quoted values and refuses unknown placeholders', () => {
    expect(shTemplate('sudo systemctl {action} {service}', { action: 'stop', service: 'kcnd' })).toBe(
      'sudo systemctl stop kcnd',
    );
    expect(shTemplate('systemctl {action} {service}', { action: 'stop', service: 'k; reboot' })).toBe(
      `systemctl stop 'k; reboot'`,
    );
    expect(() => shTemplate('systemctl {acton} {service}', { action: 'stop', service: 'kcnd' })).toThrow(
      /\{acton\}/,
    );
  });

  it('keeps newlines, quotes, shell syntax and non-ASCII text one word, as a real sh reads it', () => {
    const hostile = [
      'a\nb',
      'line\n; reboot',
      "it's",
      '$(reboot) `id` $HOME',
      'ключ 鍵 🔑',
      'café\r\t',
      '-rf',
      '--',
      '*',
    ];
    for (const value of hostile) expect(wordSeenBySh(quoteArg(value)), JSON.stringify(value)).toBe(value);
    const all = spawnSync('sh', ['-c', sh`printf '%s|' ${hostile}`], { encoding: 'utf8' });
    expect(all.stdout).toBe(hostile.map((v) => `${v}|`).join(''));
  });

  it('refuses a NUL, which no argument can carry', () => {
    expect(() => quoteArg('/var/kcnd\0/etc')).toThrow(/NUL/);
    expect(() => sh`rm -f -- ${'a\0b'}`).toThrow(/NUL/);
  });

  it('keeps a leading - from being read as an option: -- in commands, ./ for relative operands', () => {
    expect(quoteArg('-rf')).toBe('-rf'); // quoting alone cannot help: the program sees -rf
    expect(operand('-rf')).toBe('./-rf');
    expect(operand('/var/kcnd/data')).toBe('/var/kcnd/data');
    expect(sh`rm -f -- ${operand('-rf')}`).toBe('rm -f -- ./-rf');
  });
});
