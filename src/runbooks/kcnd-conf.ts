/**
 * What kcnd.conf says: its DATA_DIR, and the node's key. There is no conf variable for the nodekey path: operators put
 * `--nodekey FILE` (or, unsafely, `--nodekeyhex HEX`) in `ADDITIONAL`, which the init script appends to
 * kcn's command line. kcn then loads that file and ignores `$DATA_DIR/klay/nodekey` and the legacy
 * `$DATA_DIR/nodekey`, so fencing, backups and readiness must look there.
 *
 * The init script expands `$ADDITIONAL` unquoted: kcn sees it split on whitespace, with no quote removal.
 * The parser reads each line once, character by character, and never backtracks, so a hostile or huge file
 * costs time linear in its size. The hex of `--nodekeyhex` is never returned, only that it is there.
 */

/** The conf file of the RPM package (kaia build/rpm). */
export const KCND_CONF_PATH = '/etc/kcnd/conf/kcnd.conf';

export interface KeyFlags {
  /** The file `--nodekey` names, with `$DATA_DIR`/`${DATA_DIR}` expanded. */
  readonly nodekeyPath?: string;
  /** `--nodekeyhex` is present: the key is on kcn's command line, readable in the process list. */
  readonly nodekeyHex: boolean;
  /** A `--nodekey` value that still holds a shell expansion cellops cannot resolve. */
  readonly unresolved?: string;
}

/**
 * The value of a bash assignment's right-hand side: one shell word, its quotes removed, up to the first
 * unquoted blank, `;` or a `#` that starts a comment. Single pass.
 */
export function shellValue(text: string): string {
  let out = '';
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else out += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && i + 1 < text.length) out += text.charAt(++i);
      else out += ch;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '\\' && i + 1 < text.length) out += text.charAt(++i);
    else if (ch === ' ' || ch === '\t' || ch === ';' || ch === '\r') break;
    else if (ch === '#' && out === '') break;
    else out += ch;
  }
  return out;
}

interface Assignment {
  readonly name: string;
  readonly append: boolean;
  readonly value: string;
}

/** `[export ]NAME=value` or `NAME+=value` at the start of a line (after blanks), else undefined. */
function assignment(line: string): Assignment | undefined {
  let i = 0;
  while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  if (line.startsWith('export', i) && (line[i + 6] === ' ' || line[i + 6] === '\t')) {
    i += 6;
    while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  }
  const start = i;
  while (i < line.length && /[A-Za-z0-9_]/.test(line.charAt(i))) i++;
  if (i === start) return undefined;
  const name = line.slice(start, i);
  const append = line[i] === '+';
  if (append) i++;
  if (line[i] !== '=') return undefined;
  return { name, append, value: shellValue(line.slice(i + 1)) };
}

/** The last value of each variable, as bash leaves it after sourcing the file (`+=` appends). */
export function confVariables(conf: string): ReadonlyMap<string, string> {
  const vars = new Map<string, string>();
  for (const line of conf.split('\n')) {
    const a = assignment(line);
    if (!a) continue;
    vars.set(a.name, a.append ? (vars.get(a.name) ?? '') + a.value : a.value);
  }
  return vars;
}

/**
 * The DATA_DIR a sourced kcnd.conf (or kpnd.conf) ends up with: bash semantics, the last assignment wins.
 * The one reader of DATA_DIR from a node's file, so the snapshot runbook, the sandbox and readiness agree.
 */
export function confDataDir(conf: string): string | undefined {
  return confVariables(conf).get('DATA_DIR');
}

function expandDataDir(value: string, dataDir: string | undefined): string {
  if (dataDir === undefined) return value;
  return value.split('${DATA_DIR}').join(dataDir).split('$DATA_DIR').join(dataDir);
}

/** The key flags of kcnd.conf's ADDITIONAL. Reads no key, returns no hex. */
export function parseKeyFlags(conf: string): KeyFlags {
  const vars = confVariables(conf);
  const words = (vars.get('ADDITIONAL') ?? '').split(/[ \t]+/).filter((w) => w !== '');
  let nodekeyPath: string | undefined;
  let nodekeyHex = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? '';
    // urfave/cli takes a flag with one dash or two, and its value after `=` or as the next word.
    const flag = word.replace(/^--?/, '');
    if (flag === word) continue;
    const eq = flag.indexOf('=');
    const name = eq < 0 ? flag : flag.slice(0, eq);
    if (name === 'nodekeyhex') nodekeyHex = true;
    else if (name === 'nodekey') nodekeyPath = eq < 0 ? words[++i] : flag.slice(eq + 1);
  }
  if (nodekeyPath === undefined) return { nodekeyHex };
  const path = expandDataDir(nodekeyPath, vars.get('DATA_DIR'));
  if (path.includes('$') || !path.startsWith('/')) return { nodekeyHex, unresolved: nodekeyPath };
  return { nodekeyHex, nodekeyPath: path };
}
