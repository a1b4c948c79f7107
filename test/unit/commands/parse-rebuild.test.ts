import { describe, expect, it } from 'vitest';
import { parseCell, parseFailover } from '../../../src/commands/parse.js';
import { testConfig } from '../../support/bot-fixtures.js';
import { usageError } from '../../support/usage-error.js';

const config = testConfig();

describe('/cell rebuild-standby parser', () => {
  it('reads a CN, with or without --host as one word or two', () => {
    expect(parseCell('rebuild-standby cn1', config)).toEqual({ kind: 'rebuild-standby', cn: 'cn1' });
    expect(parseCell('rebuild-standby cn1 --host cn1s', config)).toEqual({
      kind: 'rebuild-standby',
      cn: 'cn1',
      host: 'cn1s',
    });
    expect(parseCell('rebuild-standby --host=cn1 cn1', config)).toEqual({
      kind: 'rebuild-standby',
      cn: 'cn1',
      host: 'cn1',
    });
  });

  const bad: [string, string, RegExp][] = [
    ['no CN', 'rebuild-standby', /needs a CN/],
    ['an unknown CN', 'rebuild-standby cn9', /Unknown node "cn9"/],
    ['a standby named as the CN', 'rebuild-standby cn1s', /cn1s is a standby, not a cn/],
    ['a CN without failover configuration', 'rebuild-standby cn3', /no failover configuration/],
    ['an unknown host', 'rebuild-standby cn1 --host cn9', /Unknown node "cn9"/],
    ['a PN as the host', 'rebuild-standby cn1 --host pn1', /pn1 is a pn, not a cn or standby/],
    ['--host without a node', 'rebuild-standby cn1 --host', /--host needs a node/],
    ['--host twice', 'rebuild-standby cn1 --host cn1 --host cn1s', /--host is given twice/],
    ['an unknown option', 'rebuild-standby cn1 --force', /Unknown option --force/],
    ['two CNs', 'rebuild-standby cn1 cn1', /takes one CN/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what} with the usage`, () => {
      const error = usageError(() => parseCell(text, config));
      expect(error.message).toMatch(message);
      expect(error.usage).toEqual(['/cell rebuild-standby <cn> [--host <node>]']);
    });
  }
});

describe('/failover --switchover and /cell drill switchover', () => {
  it('reads --switchover, and leaves it out when not asked for', () => {
    expect(parseFailover('cn1 --switchover', config)).toEqual({
      kind: 'failover',
      cn: 'cn1',
      dryRun: false,
      force: false,
      switchover: true,
    });
    expect(parseFailover('cn1', config)).not.toHaveProperty('switchover');
    expect(usageError(() => parseFailover('cn1 --switchover --switchover', config)).message).toMatch(
      /given twice/,
    );
  });

  it('refuses a switchover in snapshot mode', () => {
    expect(usageError(() => parseFailover('cn1 --switchover --mode snapshot', config)).message).toMatch(
      /no standby/,
    );
  });

  it('drills a switchover in the sandbox only', () => {
    expect(parseCell('drill switchover cn1', config, { sandbox: true })).toEqual({
      kind: 'drill',
      what: 'switchover',
      cn: 'cn1',
    });
    expect(usageError(() => parseCell('drill switchover cn1', config)).message).toMatch(
      /only in the sandbox/,
    );
  });
});
