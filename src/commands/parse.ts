/**
 * Strict parsers for `/failover` and `/cell` (README §Commands). Slack text is untrusted: it is checked
 * character by character, every word must be expected, and node names must be in the inventory with the
 * right role. The parsed result carries only inventory names, enum values and numbers, so no text from
 * Slack can reach a shell. Errors are InputError with the correct usage attached.
 */
import type { CellopsConfig, NodeRole } from '../config/config.js';
import { parseDuration, formatDuration } from '../config/duration.js';
import { InputError } from '../errors.js';
import { cellUsage, FAILOVER_USAGE } from './usage.js';

/** Longer than any valid command; the rest is refused without being looked at. */
export const MAX_TEXT_LENGTH = 200;
/** Mutes longer than this are refused: a forgotten mute hides the next incident. */
export const MAX_MUTE_MS = 7 * 24 * 3_600_000;

export type FailoverMode = 'standby' | 'snapshot';

export interface FailoverCommand {
  readonly kind: 'failover';
  readonly cn: string;
  readonly mode?: FailoverMode;
  readonly dryRun: boolean;
  readonly force: boolean;
  /** A planned switchover of a healthy CN to its healthy standby (present only when asked for). */
  readonly switchover?: true;
}

export type CellCommand =
  | { readonly kind: 'status' }
  | { readonly kind: 'runs' }
  | { readonly kind: 'help' }
  | { readonly kind: 'abort'; readonly runId: string }
  | { readonly kind: 'resume'; readonly runId: string }
  | { readonly kind: 'cleanup'; readonly runId: string }
  | { readonly kind: 'report'; readonly runId: string }
  | { readonly kind: 'mute'; readonly node: string; readonly durationMs: number }
  | { readonly kind: 'unmute'; readonly node: string }
  | { readonly kind: 'backup-nodekey'; readonly cn: string }
  | { readonly kind: 'image'; readonly cn: string }
  | { readonly kind: 'check'; readonly cn: string }
  | { readonly kind: 'rebuild-standby'; readonly cn: string; readonly host?: string }
  | { readonly kind: 'drill'; readonly cn: string; readonly what: DrillKind }
  | { readonly kind: 'roles'; readonly cn: string }
  /** `standby` undefined: the CN has no standby (`standby=none`). */
  | { readonly kind: 'set-roles'; readonly cn: string; readonly servedBy: string; readonly standby?: string };

/** What `/cell drill` rehearses (sandbox only). */
export type DrillKind = 'failover' | 'switchover';

/** InputError that also knows the usage lines to show with it. */
export class UsageError extends InputError {
  readonly usage: readonly string[];
  readonly hint: string | undefined;
  constructor(problem: string, usage: readonly string[], hint?: string) {
    super(problem);
    this.usage = usage;
    this.hint = hint;
  }
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const WORD = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f)
    return `a control character (U+${code.toString(16).padStart(4, '0').toUpperCase()})`;
  if (code > 0x7e) return `a non-ASCII character (U+${code.toString(16).padStart(4, '0').toUpperCase()})`;
  return `"${ch}"`;
}

/**
 * Splits the text into words after checking it: bounded length, printable ASCII only, and every word made
 * of letters, digits, dot, dash, underscore (and `--flag`, `--flag=value`).
 */
export function tokenize(text: string, usage: readonly string[]): string[] {
  if (text.length > MAX_TEXT_LENGTH) {
    throw new UsageError(
      `The command is too long (${text.length} characters; at most ${MAX_TEXT_LENGTH}).`,
      usage,
    );
  }
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    const ok = (code >= 0x20 && code <= 0x7e) || ch === '\t';
    if (!ok)
      throw new UsageError(`The command contains ${describeChar(ch)}; only plain ASCII is accepted.`, usage);
  }
  const words = text
    .trim()
    .split(/[ \t]+/)
    .filter((w) => w.length > 0);
  for (const word of words) {
    // Options are checked against the known ones by each parser; here only their shape.
    const flag = /^--?[A-Za-z0-9][A-Za-z0-9._-]*(=[A-Za-z0-9._-]+)?$/.test(word);
    const setting = /^[a-z][a-z-]*=[A-Za-z0-9._-]+$/.test(word);
    if (!flag && !setting && !WORD.test(word)) {
      const bad = [...word].find((ch) => !/[A-Za-z0-9._-]/.test(ch));
      throw new UsageError(
        bad === undefined
          ? `"${word.slice(0, 40)}" is not a valid argument.`
          : `"${word.slice(0, 40)}" contains ${describeChar(bad)}, which no argument may contain.`,
        usage,
      );
    }
  }
  return words;
}

function inventoryNode(
  config: CellopsConfig,
  name: string,
  roles: readonly NodeRole[],
  usage: readonly string[],
): string {
  const node = Object.hasOwn(config.nodes, name) ? config.nodes[name] : undefined;
  const candidates = Object.values(config.nodes)
    .filter((n) => roles.includes(n.role))
    .map((n) => n.name)
    .sort();
  const known = `Known ${roles.join('/')} nodes: ${candidates.join(', ') || 'none'}.`;
  if (node === undefined) throw new UsageError(`Unknown node "${name.slice(0, 40)}".`, usage, known);
  if (!roles.includes(node.role)) {
    throw new UsageError(`${name} is a ${node.role}, not a ${roles.join(' or ')}.`, usage, known);
  }
  return node.name;
}

/** `/failover <cn> [--mode standby|snapshot] [--switchover] [--dry-run] [--force]` */
export function parseFailover(text: string, config: CellopsConfig): FailoverCommand {
  const usage = [FAILOVER_USAGE];
  const words = tokenize(text, usage);
  let cn: string | undefined;
  let mode: FailoverMode | undefined;
  let dryRun = false;
  let force = false;
  let switchover = false;
  const seen = new Set<string>();
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? '';
    if (word.startsWith('--')) {
      const [flag = '', inlineValue] = word.split('=', 2);
      if (seen.has(flag)) throw new UsageError(`${flag} is given twice.`, usage);
      seen.add(flag);
      if (flag === '--mode') {
        const value = inlineValue ?? words[++i];
        if (value === undefined) throw new UsageError('--mode needs a value: standby or snapshot.', usage);
        if (value !== 'standby' && value !== 'snapshot') {
          throw new UsageError(`--mode must be standby or snapshot, not "${value.slice(0, 40)}".`, usage);
        }
        mode = value;
      } else if (inlineValue !== undefined) {
        throw new UsageError(`${flag} takes no value.`, usage);
      } else if (flag === '--dry-run') {
        dryRun = true;
      } else if (flag === '--force') {
        force = true;
      } else if (flag === '--switchover') {
        switchover = true;
      } else {
        throw new UsageError(`Unknown option ${flag.slice(0, 40)}.`, usage);
      }
    } else if (word.startsWith('-')) {
      throw new UsageError(`Unknown option ${word.slice(0, 40)}.`, usage);
    } else if (cn === undefined) {
      cn = word;
    } else {
      throw new UsageError(`Unexpected "${word.slice(0, 40)}": /failover takes one CN.`, usage);
    }
  }
  if (cn === undefined) throw new UsageError('Which CN? Name the consensus node to fail over.', usage);
  const name = inventoryNode(config, cn, ['cn'], usage);
  const failover = config.nodes[name]?.failover;
  if (failover === undefined) {
    throw new UsageError(
      `${name} has no failover configuration (nodes.${name}.failover in the config file).`,
      usage,
    );
  }
  if (switchover && (failover.mode === 'snapshot' || mode === 'snapshot'))
    throw new UsageError(
      `--switchover moves ${name} to its standby machine, but ${name} fails over in mode snapshot (no standby). Use --force to replace a healthy CN.`,
      usage,
    );
  return {
    kind: 'failover',
    cn: name,
    ...(mode === undefined ? {} : { mode }),
    dryRun,
    force,
    ...(switchover ? { switchover: true as const } : {}),
  };
}

/** `/cell rebuild-standby <cn> [--host <node>]`: the host must be a machine that runs kcnd (a CN or a standby). */
function parseRebuild(args: readonly string[], config: CellopsConfig, usage: readonly string[]): CellCommand {
  let cn: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const word = args[i] ?? '';
    if (word === '--host' || word.startsWith('--host=')) {
      if (host !== undefined) throw new UsageError('--host is given twice.', usage);
      const value = word.startsWith('--host=') ? word.slice('--host='.length) : args[++i];
      if (value === undefined || value.startsWith('-'))
        throw new UsageError('--host needs a node: the machine to make the standby.', usage);
      host = inventoryNode(config, value, ['cn', 'standby'], usage);
    } else if (word.startsWith('-')) {
      throw new UsageError(`Unknown option ${word.slice(0, 40)}.`, usage);
    } else if (cn === undefined) {
      cn = word;
    } else {
      throw new UsageError(`Unexpected "${word.slice(0, 40)}": /cell rebuild-standby takes one CN.`, usage);
    }
  }
  if (cn === undefined) throw new UsageError('/cell rebuild-standby needs a CN.', usage);
  const name = inventoryNode(config, cn, ['cn'], usage);
  const failover = config.nodes[name]?.failover;
  if (failover?.mode !== 'standby')
    throw new UsageError(
      failover
        ? `${name} fails over in mode ${failover.mode}: it has no standby machine to rebuild.`
        : `${name} has no failover configuration (nodes.${name}.failover in the config file).`,
      usage,
    );
  return { kind: 'rebuild-standby', cn: name, ...(host === undefined ? {} : { host }) };
}

function usageFor(sub: string, sandbox: boolean): readonly string[] {
  const all = cellUsage({ sandbox });
  const match = all.filter(([command]) => command.split(' ')[1] === sub).map(([command]) => command);
  return match.length > 0 ? match : all.map(([command]) => command);
}

/** The `/cell` family. `sandbox` enables `drill failover <cn>`. */
export function parseCell(
  text: string,
  config: CellopsConfig,
  options: { sandbox?: boolean } = {},
): CellCommand {
  const sandbox = options.sandbox === true;
  const words = tokenize(text, usageFor('', sandbox));
  const [sub, ...args] = words;
  if (sub === undefined) return { kind: 'help' };
  const usage = usageFor(sub, sandbox);
  const expect = (count: number, names: string): string[] => {
    for (const arg of args) {
      if (arg.startsWith('-')) throw new UsageError(`Unknown option ${arg.slice(0, 40)}.`, usage);
    }
    if (args.length < count) throw new UsageError(`/cell ${sub} needs ${names}.`, usage);
    if (args.length > count) {
      throw new UsageError(
        `Unexpected "${args.slice(count).join(' ').slice(0, 40)}" after /cell ${sub}.`,
        usage,
      );
    }
    return args;
  };
  switch (sub) {
    case 'status':
    case 'runs':
    case 'help':
      expect(0, '');
      return { kind: sub };
    case 'abort':
    case 'resume':
    case 'cleanup':
    case 'report': {
      const [runId = ''] = expect(1, 'a run id (see /cell runs)');
      if (!RUN_ID.test(runId)) throw new UsageError(`"${runId.slice(0, 40)}" is not a run id.`, usage);
      return { kind: sub, runId };
    }
    case 'mute': {
      const [node = '', duration = ''] = expect(2, 'a node and a duration, e.g. 30m');
      const name = inventoryNode(config, node, ['cn', 'standby', 'pn'], usage);
      const durationMs = parseDuration(duration);
      if (durationMs === undefined || durationMs <= 0) {
        throw new UsageError(`"${duration.slice(0, 40)}" is not a duration (write e.g. 30m, 2h).`, usage);
      }
      if (durationMs > MAX_MUTE_MS) {
        throw new UsageError(`A mute lasts at most ${formatDuration(MAX_MUTE_MS)}.`, usage);
      }
      return { kind: 'mute', node: name, durationMs };
    }
    case 'unmute': {
      const [node = ''] = expect(1, 'a node');
      return { kind: 'unmute', node: inventoryNode(config, node, ['cn', 'standby', 'pn'], usage) };
    }
    case 'backup-nodekey':
    case 'image':
    case 'check': {
      const [cn = ''] = expect(1, 'a CN');
      return { kind: sub, cn: inventoryNode(config, cn, ['cn'], usage) };
    }
    case 'roles':
      return parseRoles(args, config, usage);
    case 'rebuild-standby':
      return parseRebuild(args, config, usage);
    case 'drill': {
      if (!sandbox) {
        throw new UsageError('/cell drill runs only in the sandbox.', usageFor('', false));
      }
      const [what = '', cn = ''] = expect(2, '"failover" or "switchover", and a CN');
      if (what !== 'failover' && what !== 'switchover')
        throw new UsageError(`Unknown drill "${what.slice(0, 40)}": failover or switchover.`, usage);
      return { kind: 'drill', what, cn: inventoryNode(config, cn, ['cn'], usage) };
    }
    default:
      throw new UsageError(`Unknown subcommand "${sub.slice(0, 40)}".`, usageFor('', sandbox));
  }
}

/** `/cell roles <cn>` and `/cell roles <cn> set served-by=<node> standby=<node|none>`. */
function parseRoles(args: readonly string[], config: CellopsConfig, usage: readonly string[]): CellCommand {
  const [cnWord, verb, ...settings] = args;
  if (cnWord === undefined) throw new UsageError('/cell roles needs a CN.', usage);
  if (cnWord.includes('=') || cnWord.startsWith('-'))
    throw new UsageError(`"${cnWord.slice(0, 40)}" is not a CN.`, usage);
  const cn = inventoryNode(config, cnWord, ['cn'], usage);
  if (verb === undefined) return { kind: 'roles', cn };
  if (verb !== 'set')
    throw new UsageError(`Unexpected "${verb.slice(0, 40)}" after /cell roles ${cn}.`, usage);
  const values = new Map<string, string>();
  for (const setting of settings) {
    const [key = '', value] = setting.split('=', 2);
    if (value === undefined || (key !== 'served-by' && key !== 'standby'))
      throw new UsageError(
        `Unexpected "${setting.slice(0, 40)}": write served-by=<node> standby=<node|none>.`,
        usage,
      );
    if (values.has(key)) throw new UsageError(`${key} is given twice.`, usage);
    values.set(key, value);
  }
  const servedByWord = values.get('served-by');
  const standbyWord = values.get('standby');
  if (servedByWord === undefined || standbyWord === undefined)
    throw new UsageError(
      `/cell roles ${cn} set needs both served-by=<node> and standby=<node> (standby=none when there is none).`,
      usage,
    );
  const servedBy = roleMachine(config, cn, servedByWord, 'served-by', usage);
  if (standbyWord === 'none' && !Object.hasOwn(config.nodes, 'none'))
    return { kind: 'set-roles', cn, servedBy };
  const standby = roleMachine(config, cn, standbyWord, 'standby', usage);
  if (standby === servedBy)
    throw new UsageError(
      `served-by and standby are both ${servedBy}: the standby must be another machine.`,
      usage,
    );
  return { kind: 'set-roles', cn, servedBy, standby };
}

/** A machine that may serve or stand by for `cn`: its own machine, or a standby machine. */
function roleMachine(
  config: CellopsConfig,
  cn: string,
  name: string,
  what: string,
  usage: readonly string[],
): string {
  const node = inventoryNode(config, name, ['cn', 'standby'], usage);
  if (config.nodes[node]?.role === 'cn' && node !== cn)
    throw new UsageError(
      `${what}=${node}: ${node} is the machine of the CN ${node}, not one that can serve or stand by for ${cn}.`,
      usage,
    );
  return node;
}
