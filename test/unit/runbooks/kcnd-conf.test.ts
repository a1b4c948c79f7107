import { describe, expect, it } from 'vitest';
import { confDataDir, confVariables, parseKeyFlags, shellValue } from '../../../src/runbooks/kcnd-conf.js';

const HEX = 'ab'.repeat(32);

describe('kcnd.conf key flags', () => {
  it('finds --nodekey with a space, with =, with one dash, and expands $DATA_DIR', () => {
    expect(parseKeyFlags('ADDITIONAL="--nodekey /etc/kcnd/nodekey"\n').nodekeyPath).toBe('/etc/kcnd/nodekey');
    expect(parseKeyFlags("ADDITIONAL='--txpool.nolocals --nodekey=/keys/cn'\n").nodekeyPath).toBe('/keys/cn');
    expect(parseKeyFlags('ADDITIONAL="-nodekey /k"').nodekeyPath).toBe('/k');
    expect(
      parseKeyFlags('DATA_DIR=/var/kcnd/data\nADDITIONAL="--nodekey ${DATA_DIR}/keys/nodekey"').nodekeyPath,
    ).toBe('/var/kcnd/data/keys/nodekey');
  });

  it('takes the last assignment, appends with +=, and ignores comments and other variables', () => {
    const conf = [
      'ADDITIONAL="--nodekey /old"',
      '# ADDITIONAL="--nodekey /commented"',
      'ADDITIONAL=""',
      'ADDITIONAL+=" --nodekey /new" # the real one',
      'OTHER="--nodekey /not-this"',
    ].join('\n');
    expect(parseKeyFlags(conf)).toEqual({ nodekeyHex: false, nodekeyPath: '/new' });
    expect(parseKeyFlags('ADDITIONAL=""\n')).toEqual({ nodekeyHex: false });
  });

  it('flags --nodekeyhex without ever returning the hex', () => {
    const flags = parseKeyFlags(`ADDITIONAL="--nodekeyhex ${HEX}"`);
    expect(flags.nodekeyHex).toBe(true);
    expect(JSON.stringify(flags)).not.toContain(HEX);
    expect(parseKeyFlags(`ADDITIONAL="--nodekeyhex=${HEX}"`).nodekeyHex).toBe(true);
  });

  it('reports a path it cannot resolve instead of guessing', () => {
    expect(parseKeyFlags('ADDITIONAL="--nodekey $HOME/nodekey"').unresolved).toBe('$HOME/nodekey');
    expect(parseKeyFlags('ADDITIONAL="--nodekey keys/nodekey"').unresolved).toBe('keys/nodekey');
  });

  it('reads shell values like bash: quotes removed, stops at blanks and comments', () => {
    expect(shellValue(`"a b"'c'd # x`)).toBe('a bcd');
    expect(shellValue('plain;next')).toBe('plain');
    expect(shellValue('#comment')).toBe('');
    expect(confVariables('export DATA_DIR=/d\n').get('DATA_DIR')).toBe('/d');
  });

  it('reads a huge hostile line in linear time (no backtracking)', () => {
    const hostile = `ADDITIONAL="${'-'.repeat(200_000)}${' \t'.repeat(100_000)}"\n${'A=\\'.repeat(50_000)}`;
    expect(parseKeyFlags(hostile)).toEqual({ nodekeyHex: false });
  });

  it('reads DATA_DIR as bash does: last assignment, export, quotes, trailing comment', () => {
    expect(confDataDir('DATA_DIR=/var/kcnd/data\n')).toBe('/var/kcnd/data');
    expect(confDataDir('  export  DATA_DIR="/data/a" # moved by ops\nDATA_DIR=\'/data/b\'\t# again\n')).toBe(
      '/data/b',
    );
    expect(confDataDir('DATA_DIR=/data/x#not-a-comment\n')).toBe('/data/x#not-a-comment');
    expect(confDataDir('DATA_DIR= # empty\n')).toBe('');
    expect(confDataDir('#DATA_DIR=/old\nDATA_DIRX=/no\nexportDATA_DIR=/no\n')).toBeUndefined();
    // bash would stop at the blank and run `x` as a command: DATA_DIR is the first word only.
    expect(confDataDir('DATA_DIR=/data/a x\n')).toBe('/data/a');
  });

  // Regression: a comment stripper `\s+#.*$` retried from every blank of a long run, so this line held the
  // event loop for minutes (the test ran into vitest's timeout).
  it('reads DATA_DIR from lines with a megabyte of blanks in one pass', () => {
    expect(confDataDir(`DATA_DIR=/var/kcnd/data${' '.repeat(1_000_000)}x\nNETWORK=mainnet\n`)).toBe(
      '/var/kcnd/data',
    );
    expect(confDataDir(`${' '.repeat(1_000_000)}DATA_DIR=/d\n`)).toBe('/d');
    expect(confDataDir(`DATA_DIR=/d${' '.repeat(1_000_000)}#\n`)).toBe('/d');
  });
});
