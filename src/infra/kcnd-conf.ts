/**
 * Reading DATA_DIR out of a node's kcnd.conf / kpnd.conf, which the service sources as bash. The file
 * comes from the node, so it is read in one pass per line: a regular expression that strips a trailing
 * comment (`\s+#.*$`, unanchored) retries from every blank of a long blank run, which is quadratic, and a
 * node with a megabyte of spaces on one line would hold the event loop for minutes.
 */

const isBlank = (ch: string | undefined): boolean =>
  ch === ' ' || ch === '\t' || ch === '\v' || ch === '\f' || ch === '\r';

/** The value of a `[export ]DATA_DIR=` assignment line, or undefined when the line is not one. */
function assignedValue(line: string): string | undefined {
  let i = 0;
  while (isBlank(line[i])) i++;
  if (line.startsWith('export', i) && isBlank(line[i + 'export'.length])) {
    i += 'export'.length;
    while (isBlank(line[i])) i++;
  }
  if (!line.startsWith('DATA_DIR=', i)) return undefined;
  return line.slice(i + 'DATA_DIR='.length);
}

/** Cuts a comment: a `#` that begins a word (after a blank) starts one, as in bash. */
function withoutComment(value: string): string {
  for (let i = 1; i < value.length; i++) {
    if (value[i] === '#' && isBlank(value[i - 1])) return value.slice(0, i);
  }
  return value;
}

/** `'…'` or `"…"` around the whole value is bash quoting, not part of the path. */
function unquoted(value: string): string {
  const first = value[0];
  if (value.length >= 2 && (first === "'" || first === '"') && value.at(-1) === first)
    return value.slice(1, -1);
  return value;
}

/** The DATA_DIR a sourced kcnd.conf ends up with (bash semantics: the last assignment wins). */
export function confDataDir(conf: string): string | undefined {
  let value: string | undefined;
  for (const line of conf.split('\n')) {
    const assigned = assignedValue(line);
    if (assigned !== undefined) value = unquoted(withoutComment(assigned).trim());
  }
  return value;
}
