import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  assertDeletableInside,
  plainPathProblem,
  shellPlainPathGuard,
} from '../../../src/config/plain-path.js';

const PLAIN = ['/var/kcnd/data', '/data', '/mnt/vol-1/kcnd.data', '/srv/a+b@c_d-e', '/var/.hidden'];
const NOT_PLAIN = [
  '',
  'var/kcnd/data',
  '/',
  '/.',
  '//',
  '//var',
  '/var//kcnd',
  '/var/kcnd/',
  '/var/./kcnd',
  '/var/kcnd/.',
  '/var/../etc',
  '/var/kcnd/..',
  '/var/kcnd data',
  '/var/kcnd\ndata',
  '/var/kcnd\0',
  '/var/$(reboot)',
  "/var/'x'",
  '/var/k;cnd',
  '/var/kcnd\tx',
  '/var/кcnd',
  '/var/-rf',
];

describe('plain absolute paths', () => {
  it('accepts plain absolute paths and says what is wrong with the rest', () => {
    for (const path of PLAIN) expect(plainPathProblem(path), path).toBeUndefined();
    for (const path of NOT_PLAIN) expect(plainPathProblem(path), JSON.stringify(path)).toMatch(/^must /);
  });

  it('deletes only strictly inside DATA_DIR', () => {
    expect(() => assertDeletableInside('/var/kcnd/data/klay/nodekey', '/var/kcnd/data')).not.toThrow();
    for (const [path, dataDir] of [
      ['/var/kcnd/data', '/var/kcnd/data'],
      ['/var/kcnd/data-old/x', '/var/kcnd/data'],
      ['/var/kcnd/data/../../etc', '/var/kcnd/data'],
      ['/var/kcnd/data//x', '/var/kcnd/data'],
      ['/var/kcnd/data/./x', '/var/kcnd/data'],
      ['/etc/passwd', '/var/kcnd/data'],
      ['/x', '/'],
      ['/./x', '/.'],
      ['//x', '//'],
    ] as const)
      expect(() => assertDeletableInside(path, dataDir), `${path} in ${dataDir}`).toThrow(
        /^refusing to delete/,
      );
  });

  it('has the same guard in sh, which a real shell enforces before deleting anything', () => {
    const script = `p="$1"\n${shellPlainPathGuard('p')}\necho "ok $p"`;
    const verdict = (path: string) => spawnSync('sh', ['-c', script, 'guard', path], { encoding: 'utf8' });
    for (const path of PLAIN) expect(verdict(path).stdout, path).toBe(`ok ${path}\n`);
    // NUL cannot be passed as an argument at all; every other refused path must stop the script.
    for (const path of NOT_PLAIN.filter((p) => !p.includes('\0'))) {
      const result = verdict(path);
      expect(result.status, JSON.stringify(path)).toBe(2);
      expect(result.stdout).toBe('');
    }
    expect(() => shellPlainPathGuard('p; reboot')).toThrow();
  });
});
