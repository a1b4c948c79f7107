/**
 * A parser for the Prometheus text exposition format (version 0.0.4), enough for kcnd's `/metrics`:
 * `# HELP` / `# TYPE` comments, samples with or without labels, escaped label values, NaN and ±Inf, and an
 * optional timestamp. Pure: text in, samples out. Lines it cannot read are reported, not thrown, so one
 * odd metric does not hide the block height.
 */

export interface PrometheusSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestampMs?: number;
}

export interface ParsedMetrics {
  readonly samples: readonly PrometheusSample[];
  /** Metric family name to its `# TYPE` (gauge, counter, histogram, summary, untyped). */
  readonly types: Readonly<Record<string, string>>;
  /** Lines that were neither comments nor valid samples, with their 1-based line numbers. */
  readonly errors: ReadonlyArray<{ readonly line: number; readonly message: string }>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
/** Sticky: matched at an index, so a line with many labels is not copied once per label. */
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;

export function parseSampleValue(text: string): number | undefined {
  switch (text) {
    case 'NaN':
      return Number.NaN;
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    default:
      return isDecimalNumber(text) ? Number(text) : undefined;
  }
}

/**
 * The longest sample value read. A float64 printed in full takes 24 characters; anything far longer is
 * not a gauge kcnd wrote but a hostile or broken endpoint, and is refused before any work is done on it.
 */
export const MAX_VALUE_CHARS = 64;

const isDigit = (code: number): boolean => code >= 48 && code <= 57;

/**
 * `[+-]?(digits[.digits] | .digits)([eE][+-]?digits)?`, checked in one pass. A regular expression for
 * the same shape backtracks on a long run of digits followed by a stray character (quadratic), which a
 * node serving a million-digit value would turn into seconds of blocked event loop.
 */
function isDecimalNumber(text: string): boolean {
  if (text.length === 0 || text.length > MAX_VALUE_CHARS) return false;
  let i = 0;
  const n = text.length;
  const digits = (): number => {
    const start = i;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    return i - start;
  };
  if (text[i] === '+' || text[i] === '-') i++;
  let mantissa = digits();
  if (text[i] === '.') {
    i++;
    mantissa += digits();
  }
  if (mantissa === 0) return false;
  if (text[i] === 'e' || text[i] === 'E') {
    i++;
    if (text[i] === '+' || text[i] === '-') i++;
    if (digits() === 0) return false;
  }
  return i === n;
}

/** Reads `{a="x",b="y\"z"}` from the start of `text`; returns the labels and what follows. */
function readLabels(text: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1; // past '{'
  for (;;) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    LABEL_NAME.lastIndex = i;
    const name = LABEL_NAME.exec(text)?.[0];
    if (!name) throw new Error(`bad label name at column ${i + 1}`);
    i += name.length;
    while (text[i] === ' ') i++;
    if (text[i] !== '=') throw new Error(`expected = after label ${name}`);
    i++;
    while (text[i] === ' ') i++;
    if (text[i] !== '"') throw new Error(`expected a quoted value for label ${name}`);
    i++;
    let value = '';
    for (;;) {
      const ch = text[i];
      if (ch === undefined) throw new Error(`unterminated value for label ${name}`);
      if (ch === '"') break;
      if (ch === '\\') {
        const next = text[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
        continue;
      }
      value += ch;
      i++;
    }
    i++; // past closing quote
    labels[name] = value;
  }
}

export function parseSampleLine(line: string): PrometheusSample {
  const name = NAME.exec(line)?.[0];
  if (!name) throw new Error('does not start with a metric name');
  let rest = line.slice(name.length);
  let labels: Record<string, string> = {};
  if (rest.startsWith('{')) ({ labels, rest } = readLabels(rest));
  const fields = rest.trim().split(/\s+/);
  const valueText = fields[0];
  if (valueText === undefined || valueText === '') throw new Error(`no value for ${name}`);
  if (valueText.length > MAX_VALUE_CHARS)
    throw new Error(`value of ${name} is ${valueText.length} characters long (at most ${MAX_VALUE_CHARS})`);
  const value = parseSampleValue(valueText);
  if (value === undefined) throw new Error(`value "${valueText}" of ${name} is not a number`);
  if (fields.length > 2) throw new Error(`unexpected text after the value of ${name}`);
  const ts = fields[1];
  if (ts !== undefined) {
    if (!/^-?\d+$/.test(ts)) throw new Error(`timestamp "${ts}" of ${name} is not an integer`);
    return { name, labels, value, timestampMs: Number(ts) };
  }
  return { name, labels, value };
}

export function parsePrometheusText(text: string): ParsedMetrics {
  const samples: PrometheusSample[] = [];
  const types: Record<string, string> = {};
  const errors: Array<{ line: number; message: string }> = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      const type = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (type?.[1] !== undefined && type[2] !== undefined) types[type[1]] = type[2];
      return;
    }
    try {
      samples.push(parseSampleLine(line));
    } catch (error) {
      errors.push({ line: index + 1, message: error instanceof Error ? error.message : String(error) });
    }
  });
  return { samples, types, errors };
}

/**
 * The value of the first sample called `name` whose labels include `labels`; undefined when there is
 * none. kcnd exports one unlabelled gauge per name, so the first match is the one.
 */
export function metricValue(
  parsed: ParsedMetrics,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const sample = parsed.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return sample?.value;
}

/**
 * The values of a few metrics without parsing the whole exposition: for each of `names`, the first
 * sample line of that name (any labels) that parses, as `metricValue(parsePrometheusText(text), name)`
 * would find it. A probe needs three gauges out of the thousands of lines kcnd serves, and parsing every
 * line of every node every second was most of the monitor's parse cost at scale. Each candidate line is
 * still read by the full line parser, so escaping, NaN/Inf and timestamps are handled the same way.
 */
export function scanMetricValues<Name extends string>(
  text: string,
  names: readonly Name[],
): Partial<Record<Name, number>> {
  const out: Partial<Record<Name, number>> = {};
  for (const name of names) {
    let from = 0;
    for (;;) {
      const at = text.indexOf(name, from);
      if (at < 0) break;
      from = at + name.length;
      if (!startsSampleLine(text, at) || !endsMetricName(text.charCodeAt(at + name.length))) continue;
      let end = text.indexOf('\n', at);
      if (end < 0) end = text.length;
      try {
        out[name] = parseSampleLine(text.slice(at, end).trim()).value;
        break;
      } catch {
        // The full parser skips an unreadable line too: look for a later sample of the same name.
      }
    }
  }
  return out;
}

/** Only blanks between the previous line break (or the start) and `at`: `at` begins a sample line. */
function startsSampleLine(text: string, at: number): boolean {
  for (let i = at - 1; i >= 0; i--) {
    const c = text.charCodeAt(i);
    if (c === 10) return true; // \n
    // Blanks that String.prototype.trim removes too: space, tab, \v, \f, \r.
    if (c !== 32 && c !== 9 && c !== 11 && c !== 12 && c !== 13) return false;
  }
  return true;
}

/** The character after a wanted name ends the metric name: `{`, a blank, or the end of the text. */
function endsMetricName(code: number): boolean {
  return Number.isNaN(code) || code === 123 || code === 32 || code === 9;
}
