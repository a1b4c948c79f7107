/**
 * Reading what `kcn attach --exec '<js>'` prints. The console pretty-prints the expression's value: a
 * string in double quotes (Go %q quoting, JSON-compatible for the ASCII we ask for), an object in JS
 * notation with unquoted keys, possibly in colour, possibly after log lines. We only ever need an address
 * or a JSON string we produced ourselves with JSON.stringify, so the readers below stay narrow.
 */
import { redactThenTruncate } from '../../infra/redact.js';

const ANSI = new RegExp(String.raw`\u001b\[[0-9;]*m`, 'g');
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

function lines(stdout: string): string[] {
  return stdout
    .replace(ANSI, '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** The last printed string value (the line in double quotes), unquoted; undefined when there is none. */
export function lastConsoleString(stdout: string): string | undefined {
  for (const line of lines(stdout).reverse()) {
    if (line.length >= 2 && line.startsWith('"') && line.endsWith('"')) {
      try {
        const value: unknown = JSON.parse(line);
        if (typeof value === 'string') return value;
      } catch {
        return line.slice(1, -1);
      }
    }
  }
  return undefined;
}

/**
 * The node address in the output: the printed string itself (`kaia.nodeAddress`), or the `nodeAddress`
 * field of a printed object (`admin.nodeInfo`, as JSON or console notation). Lower-cased.
 */
export function consoleNodeAddress(stdout: string): string | undefined {
  const printed = lastConsoleString(stdout);
  if (printed !== undefined && ADDRESS.test(printed)) return printed.toLowerCase();
  const bare = lines(stdout)
    .reverse()
    .find((l) => ADDRESS.test(l));
  if (bare !== undefined) return bare.toLowerCase();
  const field = /\bnodeAddress"?\s*:\s*"(0x[0-9a-fA-F]{40})"/.exec(stdout.replace(ANSI, ''));
  return field?.[1]?.toLowerCase();
}

/** The first line of output worth showing an operator when a console call failed, bounded. */
export function consoleErrorLine(stdout: string, stderr: string): string {
  const all = [...lines(stderr), ...lines(stdout)];
  const pick =
    all.find((l) => /fatal|error|unable|denied|no such file|not defined|refused/i.test(l)) ?? all[0] ?? '';
  return redactThenTruncate(pick, 201);
}
