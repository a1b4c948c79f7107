import { describe, expect, it } from 'vitest';
import { parseCell, parseFailover } from '../../../src/commands/parse.js';
import { testConfig } from '../../support/bot-fixtures.js';
import { usageError } from '../../support/usage-error.js';

const config = testConfig();

describe('/failover parser', () => {
  it('reads a CN with no options', () => {
    expect(parseFailover('cn1', config)).toEqual({
      kind: 'failover',
      cn: 'cn1',
      dryRun: false,
      force: false,
    });
  });

  it('reads every option, in any order, with --mode as one word or two', () => {
    expect(parseFailover('--dry-run cn1 --mode snapshot --force', config)).toEqual({
      kind: 'failover',
      cn: 'cn1',
      mode: 'snapshot',
      dryRun: true,
      force: true,
    });
    expect(parseFailover('  cn1   --mode=standby ', config)).toMatchObject({ cn: 'cn1', mode: 'standby' });
  });

  const bad: [string, string, RegExp][] = [
    ['an unknown node', 'cn9', /Unknown node "cn9"/],
    ['a node of the wrong role', 'cn1s', /cn1s is a standby, not a cn/],
    ['a PN', 'pn1', /pn1 is a pn/],
    ['a CN without failover configuration', 'cn3', /no failover configuration/],
    ['an unknown flag', 'cn1 --yolo', /Unknown option --yolo/],
    ['a single-dash flag', 'cn1 -f', /Unknown option -f/],
    ['a flag given twice', 'cn1 --force --force', /--force is given twice/],
    ['a bad mode', 'cn1 --mode hot', /--mode must be standby or snapshot/],
    ['a mode without value', 'cn1 --mode', /--mode needs a value/],
    ['a value on a switch', 'cn1 --force=yes', /--force takes no value/],
    ['a missing node', '', /Which CN/],
    ['only flags', '--dry-run', /Which CN/],
    ['extra words', 'cn1 cn1s', /Unexpected "cn1s"/],
    ['a shell injection', 'cn1; rm -rf /', /contains ";"/],
    ['command substitution', 'cn1$(reboot)', /contains "\$"/],
    ['a backtick', '`id`', /contains "`"/],
    ['a 4,000-character text', 'cn1 '.repeat(1_000), /too long \(4000 characters/],
    ['non-ASCII text', 'cn１', /non-ASCII character \(U\+FF11\)/],
    ['a non-breaking space', 'cn1\u00a0--force', /non-ASCII character \(U\+00A0\)/],
    ['a newline', 'cn1\nrm', /control character \(U\+000A\)/],
    ['an upper-case node', 'CN1', /Unknown node "CN1"/],
    ['a prototype key', '__proto__', /not a valid argument/],
    ['constructor', 'constructor', /Unknown node "constructor"/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what} with the usage`, () => {
      const error = usageError(() => parseFailover(text, config));
      expect(error.message).toMatch(message);
      expect(error.code).toBe('bad_input');
      expect(error.usage).toEqual([
        '/failover <cn> [--mode standby|snapshot] [--switchover] [--dry-run] [--force]',
      ]);
    });
  }

  it('names the known CNs when the node is unknown', () => {
    expect(usageError(() => parseFailover('cn9', config)).hint).toBe('Known cn nodes: cn1, cn3.');
  });
});

describe('/cell parser', () => {
  it('reads every subcommand', () => {
    expect(parseCell('status', config)).toEqual({ kind: 'status' });
    expect(parseCell('runs', config)).toEqual({ kind: 'runs' });
    expect(parseCell('help', config)).toEqual({ kind: 'help' });
    expect(parseCell('', config)).toEqual({ kind: 'help' });
    expect(parseCell('abort r-abc_123', config)).toEqual({ kind: 'abort', runId: 'r-abc_123' });
    expect(parseCell('resume r1', config)).toEqual({ kind: 'resume', runId: 'r1' });
    expect(parseCell('mute pn1 30m', config)).toEqual({ kind: 'mute', node: 'pn1', durationMs: 1_800_000 });
    expect(parseCell('mute cn1s 1h30m', config)).toEqual({
      kind: 'mute',
      node: 'cn1s',
      durationMs: 5_400_000,
    });
    expect(parseCell('unmute cn1', config)).toEqual({ kind: 'unmute', node: 'cn1' });
    expect(parseCell('backup-nodekey cn1', config)).toEqual({ kind: 'backup-nodekey', cn: 'cn1' });
    expect(parseCell('image cn3', config)).toEqual({ kind: 'image', cn: 'cn3' });
    expect(parseCell('check cn1', config)).toEqual({ kind: 'check', cn: 'cn1' });
  });

  const bad: [string, string, RegExp, string?][] = [
    ['an unknown subcommand', 'reboot cn1', /Unknown subcommand "reboot"/],
    ['a missing run id', 'abort', /needs a run id/, '/cell abort <run>'],
    ['a bad run id', 'abort ../../etc', /contains "\/"/],
    ['extra words', 'status now', /Unexpected "now"/, '/cell status'],
    ['a mute without duration', 'mute cn1', /needs a node and a duration/, '/cell mute <node> <duration>'],
    ['a mute with a bad duration', 'mute cn1 forever', /"forever" is not a duration/],
    ['a zero mute', 'mute cn1 0s', /"0s" is not a duration/],
    ['a mute of a month', 'mute cn1 30d', /at most/],
    ['a mute of an unknown node', 'mute cn7 1h', /Unknown node "cn7"/],
    ['a backup of a standby', 'backup-nodekey cn1s', /cn1s is a standby, not a cn/],
    ['an image of a PN', 'image pn1', /pn1 is a pn, not a cn/],
    ['a flag', 'check cn1 --now', /Unknown option --now/],
    ['an injection', 'check cn1;reboot', /contains ";"/],
    ['a 4,000-character text', `status ${'x'.repeat(3_993)}`, /too long/],
    ['non-ASCII text', 'státus', /non-ASCII/],
    ['a drill outside the sandbox', 'drill failover cn1', /only in the sandbox/],
  ];
  for (const [what, text, message, usage] of bad) {
    it(`refuses ${what} with the usage`, () => {
      const error = usageError(() => parseCell(text, config));
      expect(error.message).toMatch(message);
      expect(error.usage.length).toBeGreaterThan(0);
      if (usage) expect(error.usage).toEqual([usage]);
    });
  }

  it('accepts a drill only in the sandbox, and only of a CN', () => {
    expect(parseCell('drill failover cn1', config, { sandbox: true })).toEqual({
      kind: 'drill',
      what: 'failover',
      cn: 'cn1',
    });
    expect(usageError(() => parseCell('drill reboot cn1', config, { sandbox: true })).message).toMatch(
      /Unknown drill/,
    );
    expect(usageError(() => parseCell('drill failover pn1', config, { sandbox: true })).message).toMatch(
      /pn1 is a pn/,
    );
  });
});
