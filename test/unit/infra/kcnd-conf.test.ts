import { describe, expect, it } from 'vitest';
import { confDataDir } from '../../../src/infra/kcnd-conf.js';

describe('DATA_DIR of a sourced kcnd.conf', () => {
  it('reads the last assignment, with export, quotes and a trailing comment as bash does', () => {
    expect(confDataDir('DATA_DIR=/var/kcnd/data\n')).toBe('/var/kcnd/data');
    expect(confDataDir('  export  DATA_DIR="/data/a" # moved by ops\nDATA_DIR=\'/data/b\'\t# again\n')).toBe(
      '/data/b',
    );
    expect(confDataDir('DATA_DIR=/data/x#not-a-comment\n')).toBe('/data/x#not-a-comment');
    expect(confDataDir('DATA_DIR= # empty\n')).toBe('');
    expect(confDataDir('#DATA_DIR=/old\nDATA_DIRX=/no\nexportDATA_DIR=/no\n')).toBeUndefined();
    expect(confDataDir('DATA_DIR="/only-open\n')).toBe('"/only-open');
  });

  // Regression: the old comment stripper (`\s+#.*$`) retried from every blank of a long run, so this line
  // held the event loop for minutes (the test ran into vitest's timeout).
  it('reads a line with a megabyte of blanks and no comment in one pass', () => {
    const conf = `DATA_DIR=/var/kcnd/data${' '.repeat(1_000_000)}x\nNETWORK=mainnet\n`;
    expect(confDataDir(conf)).toBe(`/var/kcnd/data${' '.repeat(1_000_000)}x`);
    expect(confDataDir(`${' '.repeat(1_000_000)}DATA_DIR=/d\n`)).toBe('/d');
  });
});
