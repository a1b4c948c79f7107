/**
 * The command line of `cellops`: one command, its positional arguments and the options that command
 * takes. Anything else (an unknown command, an unknown option, an option another command takes, a
 * missing or extra argument) is a UsageError, which the CLI answers with the usage and exit status 2
 * before connecting to anything.
 */
import { parseArgs } from 'node:util';

export const USAGE = `usage: cellops <command> [options]

commands:
  check-config [file]  validate a configuration and print the resolved inventory
                       (file default: $CELLOPS_CONFIG, else ./cellops.yaml)
  runs                 list recent runs, newest first
  audit <run>          print a run's audit trail as JSON lines, oldest first
  report <run>         print a run's post-incident report as Markdown (timeline, time to
                       recover, blocks the CN missed, what was left behind)

options:
  --config <file>   runs, audit, report: the configuration whose Redis key prefix to read
                    (default: $CELLOPS_CONFIG, else ./cellops.yaml)
  --prefix <p>      runs, audit, report: this Redis key prefix instead (e.g. a sandbox's)
  --limit <n>       runs: how many (default 20)
  --json            runs: one JSON object per line instead of a table
  -h, --help        print this help
  -V, --version     print the version

environment: REDIS_URL (default redis://127.0.0.1:6379), CELLOPS_CONFIG`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type CliCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'check-config'; readonly file?: string }
  | { readonly kind: 'runs'; readonly store: StoreOptions; readonly limit: number; readonly json: boolean }
  | { readonly kind: 'audit' | 'report'; readonly store: StoreOptions; readonly runId: string };

/** Where the run store's keys are: an explicit prefix, or the one of a configuration file. */
export interface StoreOptions {
  readonly prefix?: string;
  readonly config?: string;
}

const OPTIONS = {
  config: { type: 'string' },
  prefix: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

type OptionName = keyof typeof OPTIONS;

/** Which options each command takes and how many positional arguments (min, max). */
const COMMANDS: Readonly<Record<string, { options: readonly OptionName[]; args: [number, number] }>> = {
  'check-config': { options: [], args: [0, 1] },
  runs: { options: ['config', 'prefix', 'limit', 'json'], args: [0, 0] },
  audit: { options: ['config', 'prefix'], args: [1, 1] },
  report: { options: ['config', 'prefix'], args: [1, 1] },
};

const ARGUMENTS: Readonly<Record<string, string>> = {
  'check-config': '[file]',
  runs: '',
  audit: '<run>',
  report: '<run>',
};

interface Parsed {
  readonly values: { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };
  readonly positionals: readonly string[];
}

function parseOrExplain(argv: readonly string[]): Parsed {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    // node's messages name the option and say what is wrong with it; the rest is noise for a user.
    const message = error instanceof Error ? error.message.split('. To specify')[0] : String(error);
    throw new UsageError(message ?? 'bad arguments');
  }
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return 20;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new UsageError(`--limit: "${text}" is not a whole number from 1 to 10000`);
  }
  return limit;
}

export function parseCliArgs(argv: readonly string[]): CliCommand {
  const { values, positionals } = parseOrExplain(argv);
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [command, ...args] = positionals;
  if (command === undefined) throw new UsageError('no command given');
  const spec = COMMANDS[command];
  if (spec === undefined) throw new UsageError(`unknown command "${command}"`);
  for (const name of Object.keys(values) as OptionName[]) {
    if (name !== 'help' && name !== 'version' && !spec.options.includes(name)) {
      throw new UsageError(`${command} does not take --${name}`);
    }
  }
  const [min, max] = spec.args;
  if (args.length < min || args.length > max) {
    throw new UsageError(`usage: cellops ${command} ${ARGUMENTS[command] ?? ''}`.trimEnd());
  }
  const store: StoreOptions = {
    ...(values.prefix === undefined ? {} : { prefix: values.prefix }),
    ...(values.config === undefined ? {} : { config: values.config }),
  };
  switch (command) {
    case 'check-config':
      return args[0] === undefined ? { kind: 'check-config' } : { kind: 'check-config', file: args[0] };
    case 'runs':
      return { kind: 'runs', store, limit: parseLimit(values.limit), json: values.json === true };
    default:
      return { kind: command === 'audit' ? 'audit' : 'report', store, runId: args[0] ?? '' };
  }
}
