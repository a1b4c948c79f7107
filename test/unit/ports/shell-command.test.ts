import { describe, expect, it } from 'vitest';
import { quoteArg, raw, sh, shTemplate } from '../../../src/ports/shell-command.js';

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
});
