/**
 * The verbs of the host helper (deploy/host/cellops-host) and the privileged commands they stand for.
 *
 * Runbooks build their privileged commands in one regular form, `sudo -n <tool> <args>` (plus the
 * operator's service and attach templates, and four `sudo -n sh -c SCRIPT cellops-<name> ARGS` scripts
 * of the snapshot failover). On hosts set up for least privilege, sudo allows the helper and nothing
 * else; `helperCall` maps each of those forms, word for word, to the helper verb that does the same
 * thing. A command of any other form maps to nothing and is refused before it is sent: nothing reaches a
 * host with broader rights than the helper's.
 */
import { createHash } from 'node:crypto';
import { parsePrivilegedScript, splitShellWords } from '../../ports/shell-command.js';

/** Verbs that change the host: the helper refuses them without a fencing token, so the shell does too. */
export const DESTRUCTIVE_VERBS: ReadonlySet<string> = new Set([
  'write',
  'move',
  'remove',
  'create-private',
  'random-key',
  'ip-add',
  'ip-del',
  'arping',
  'freeze',
  'thaw',
  'mount-data',
  'keep-chaindata',
  'set-datadir',
]);

/** The snapshot failover's scripts, run by the helper as verbs of the same names. */
const SCRIPT_VERBS: ReadonlySet<string> = new Set([
  'mount-data',
  'keep-chaindata',
  'data-layout',
  'set-datadir',
]);

export interface HelperCall {
  readonly verb: string;
  readonly args: readonly string[];
  /** Needs the run's fencing token. */
  readonly destructive: boolean;
}

/** The operator's command templates (ssh.serviceCommand, ssh.attachCommand). */
export interface HelperTemplates {
  readonly serviceCommand: string;
  readonly attachCommand: string;
}

type Form = (rest: readonly string[]) => HelperCall | undefined;

const call = (verb: string, args: readonly string[]): HelperCall => ({
  verb,
  args,
  destructive: DESTRUCTIVE_VERBS.has(verb),
});

/** `words` equal `shape`, where `_` stands for one operand; returns the operands. */
function match(words: readonly string[], shape: readonly string[]): string[] | undefined {
  if (words.length !== shape.length) return undefined;
  const operands: string[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === '_') operands.push(words[i] ?? '');
    else if (shape[i] !== words[i]) return undefined;
  }
  return operands;
}

/** One tool's forms: each shape (after the tool's name) and the verb it becomes. */
function forms(...shapes: (readonly [string, readonly string[]])[]): Form {
  return (rest) => {
    for (const [verb, shape] of shapes) {
      const operands = match(rest, shape);
      if (operands) return call(verb, operands);
    }
    return undefined;
  };
}

const TOOLS: Readonly<Record<string, Form>> = {
  test: forms(['exists', ['-e', '_']]),
  cat: forms(['read', ['--', '_']]),
  install: forms(
    ['write', ['-D', '-m', '0600', '--', '/dev/stdin', '_']],
    ['create-private', ['-m', '0600', '--', '/dev/null', '_']],
  ),
  sha256sum: forms(['sha256', ['--', '_']]),
  stat: forms(['mtime', ['-c', '%Y', '--', '_']], ['size', ['-c', '%s', '--', '_']]),
  mv: forms(['move', ['--', '_', '_']]),
  rm: forms(['remove', ['-f', '--', '_']]),
  ip: forms(
    ['ip-add', ['addr', 'add', '_', 'dev', '_']],
    ['ip-del', ['addr', 'del', '_', 'dev', '_']],
    ['ip-show', ['-o', 'addr', 'show', 'dev', '_']],
  ),
  arping: forms(['arping', ['-U', '-c', '3', '-I', '_', '_']]),
  sync: forms(['sync', []]),
  fsfreeze: forms(['freeze', ['-f', '--', '_']], ['thaw', ['-u', '--', '_']]),
  pgrep: forms(['pgrep', ['-x', '--', '_']]),
  df: forms(['free-space', ['-Pk', '--', '_']]),
  find: forms(['list-aside', ['_', '-maxdepth', '2', '-name', '*nodekey.cellops-*']]),
  openssl: forms(['random-key', ['rand', '-hex', '-out', '_', '32']]),
};

/** Matches `words` against an operator template such as `sudo -n systemctl {action} {service}`. */
function matchTemplate(template: string, words: readonly string[]): Record<string, string> | undefined {
  const parts = template.trim().split(/\s+/);
  if (parts.length !== words.length) return undefined;
  const values: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const names: string[] = [];
    const pattern = (parts[i] ?? '')
      .split(/(\{[a-zA-Z]+\})/)
      .map((piece) => {
        const name = /^\{([a-zA-Z]+)\}$/.exec(piece)?.[1];
        if (name === undefined) return piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(name);
        return '(.+)';
      })
      .join('');
    const found = new RegExp(`^${pattern}$`).exec(words[i] ?? '');
    if (!found) return undefined;
    names.forEach((name, j) => {
      values[name] = found[j + 1] ?? '';
    });
  }
  return values;
}

/** The helper verb a privileged command stands for, or undefined when it is not one the runbooks build. */
export function helperCall(command: string, templates: HelperTemplates): HelperCall | undefined {
  const words = splitShellWords(command);
  if (!words) return undefined;
  const service = matchTemplate(templates.serviceCommand, words);
  if (service?.action !== undefined && service.service !== undefined) {
    const destructive = service.action !== 'is-active';
    return { verb: 'service', args: [service.action, service.service], destructive };
  }
  const attach = matchTemplate(templates.attachCommand, words);
  if (attach?.binary !== undefined && attach.js !== undefined && attach.dataDir !== undefined)
    return call('attach', [attach.binary, attach.js, attach.dataDir]);
  // The snapshot failover's scripts: the helper has its own copy of each, so only the name and the
  // arguments travel.
  const script = parsePrivilegedScript(command);
  if (script) return SCRIPT_VERBS.has(script.name) ? call(script.name, script.args) : undefined;
  if (words[0] !== 'sudo' || words[1] !== '-n') return undefined;
  const [tool, ...rest] = words.slice(2);
  return tool === undefined ? undefined : TOOLS[tool]?.(rest);
}

/**
 * A cell name as the helper takes it in `--fence <cell>:<token>` and in its state file's name: the name
 * itself when it is a plain word, else `cell-` and a hash of it (any name is a valid cell in cellops.yaml).
 */
export function fenceScope(cell: string): string {
  if (/^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/.test(cell)) return cell;
  return `cell-${createHash('sha256').update(cell).digest('hex').slice(0, 16)}`;
}
