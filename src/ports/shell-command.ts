/**
 * Shell commands built so that interpolated values can never be parsed as shell syntax.
 *
 *   sh`sudo -n install -m 0600 /dev/stdin ${path}`   // path is single-quoted
 *   shTemplate('sudo systemctl {action} {service}', { action: 'stop', service: 'kcnd' })
 *
 * The templates come from the operator's configuration (trusted); every value substituted into them is
 * quoted.
 */
declare const shellCommandBrand: unique symbol;

/** A command string whose every variable part has been quoted. Only this module creates them. */
export type ShellCommand = string & { readonly [shellCommandBrand]: true };

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one argument for a POSIX shell. Words made only of safe characters are left as they are.
 * Newlines and non-ASCII text are safe inside single quotes; NUL is refused, because no argument can hold
 * one (the shell would silently end the word there and run a different command). Quoting does not stop a
 * program from reading a leading `-` as an option: commands pass `--` before operands, or use `operand`.
 */
export function quoteArg(value: string): string {
  if (value.includes('\0')) throw new Error('a shell argument cannot contain a NUL character');
  if (value.length > 0 && SAFE_WORD.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A path operand for a tool that has no `--`: a relative path starting with `-` gets `./` in front so it
 * cannot be read as an option. Absolute paths never start with `-` and are returned as they are.
 */
export function operand(path: string): string {
  return path.startsWith('-') ? `./${path}` : path;
}

/** A literal piece of shell syntax to splice into `sh` unquoted, e.g. another ShellCommand. */
export interface RawShell {
  readonly raw: string;
}

export function raw(text: ShellCommand): RawShell {
  return { raw: text };
}

type ShArg = string | number | RawShell | readonly string[];

function render(value: ShArg): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return quoteArg(value);
  if (Array.isArray(value)) return (value as readonly string[]).map(quoteArg).join(' ');
  return (value as RawShell).raw;
}

/** Tagged template: literal parts are kept, interpolated values are quoted (arrays become quoted words). */
export function sh(strings: TemplateStringsArray, ...values: ShArg[]): ShellCommand {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return out as ShellCommand;
}

/**
 * Fills `{name}` placeholders of an operator-configured template with quoted values. An unknown
 * placeholder is an error rather than a silent empty string, so a typo in the configuration cannot turn
 * `systemctl {action} {service}` into `systemctl stop`.
 */
export function shTemplate(
  template: string,
  values: Readonly<Record<string, string | RawShell>>,
): ShellCommand {
  return template.replace(/\{([a-zA-Z]+)\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined)
      throw new Error(`command template "${template}" uses unknown placeholder {${name}}`);
    return typeof value === 'string' ? quoteArg(value) : value.raw;
  }) as ShellCommand;
}

/**
 * Splits a command built by `sh`/`shTemplate` back into its words, the way a POSIX shell would: plain
 * words, '…' quotes and \x escapes. Undefined when the text holds anything else unquoted (`;`, `|`, `$`,
 * a newline, …): such a command was not built by this module, and whoever reads it must not guess.
 */
export function splitShellWords(command: string): string[] | undefined {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] ?? '';
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return undefined;
      current += command.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '\\') {
      current += command[i + 1] ?? '';
      inWord = true;
      i += 1;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else if (/[;&|<>$`"(){}*?\n]/.test(c)) {
      return undefined;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}

/** Runs `sudo -n sh -c SCRIPT cellops-NAME ARGS…`: the script is a constant, the arguments are quoted. */
export function privilegedScript(name: string, script: string, args: readonly string[]): ShellCommand {
  return sh`sudo -n sh -c ${script} ${`cellops-${name}`} ${args}`;
}

/**
 * The operation name and arguments of a command built by `privilegedScript`, or undefined for any other
 * command. For simulated hosts (the sandbox, tests), which act out the operation instead of the script.
 */
export function parsePrivilegedScript(
  command: string,
): { readonly name: string; readonly args: readonly string[] } | undefined {
  if (!command.startsWith('sudo -n sh -c ')) return undefined;
  // sudo -n sh -c SCRIPT cellops-NAME ARGS…
  const words = splitShellWords(command);
  if (!words) return undefined;
  const name = words[5];
  if (words[2] !== 'sh' || words[3] !== '-c' || !name?.startsWith('cellops-')) return undefined;
  return { name: name.slice('cellops-'.length), args: words.slice(6) };
}
