import { describe, expect, it } from 'vitest';
import {
  MAX_VALUE_CHARS,
  metricValue,
  parsePrometheusText,
  parseSampleValue,
  scanMetricValues,
} from '../../../src/adapters/rpc/prometheus-text.js';

const KCND_SAMPLE = `# HELP klaytn_blockchain_head_blocknumber Generated from Klaytn metrics
# TYPE klaytn_blockchain_head_blocknumber gauge
klaytn_blockchain_head_blocknumber 171234567
# TYPE klaytn_p2p_CNPeerCountGauge gauge
klaytn_p2p_CNPeerCountGauge 21
klaytn_p2p_PNPeerCountGauge 2
klaytn_p2p_PeerCountGauge 23
# TYPE klaytn_consensus_istanbul_core_timer_0_99 gauge
klaytn_consensus_istanbul_core_timer_0_99 1.5e+09
klaytn_tx_pool_pending_gauge NaN
klaytn_some_rate +Inf
klaytn_other_rate -Inf
`;

describe('Prometheus text parser', () => {
  it('reads kcnd gauges, keeping the case of names and the types declared', () => {
    const parsed = parsePrometheusText(KCND_SAMPLE);
    expect(metricValue(parsed, 'klaytn_blockchain_head_blocknumber')).toBe(171234567);
    expect(metricValue(parsed, 'klaytn_p2p_CNPeerCountGauge')).toBe(21);
    expect(metricValue(parsed, 'klaytn_p2p_cnpeercountgauge')).toBeUndefined();
    expect(metricValue(parsed, 'klaytn_consensus_istanbul_core_timer_0_99')).toBe(1.5e9);
    expect(parsed.types.klaytn_blockchain_head_blocknumber).toBe('gauge');
    expect(parsed.errors).toEqual([]);
  });

  it('reads NaN and both infinities as numbers', () => {
    const parsed = parsePrometheusText(KCND_SAMPLE);
    expect(metricValue(parsed, 'klaytn_tx_pool_pending_gauge')).toBeNaN();
    expect(metricValue(parsed, 'klaytn_some_rate')).toBe(Number.POSITIVE_INFINITY);
    expect(metricValue(parsed, 'klaytn_other_rate')).toBe(Number.NEGATIVE_INFINITY);
  });

  it('reads labels with escaped quotes, backslashes, newlines and commas, and an optional timestamp', () => {
    const parsed = parsePrometheusText(
      'http_requests_total{method="post",path="/a,b",note="say \\"hi\\"\\\\ \\n",} 1027 1395066363000\r\n' +
        'http_requests_total{method="get"} 3\n',
    );
    expect(parsed.samples[0]).toEqual({
      name: 'http_requests_total',
      labels: { method: 'post', path: '/a,b', note: 'say "hi"\\ \n' },
      value: 1027,
      timestampMs: 1395066363000,
    });
    expect(metricValue(parsed, 'http_requests_total', { method: 'get' })).toBe(3);
    expect(metricValue(parsed, 'http_requests_total', { method: 'put' })).toBeUndefined();
  });

  it('reports unreadable lines without losing the good ones', () => {
    const parsed = parsePrometheusText(
      '<html>login</html>\nklaytn_blockchain_head_blocknumber 5\nbroken{a="x" 1\nvalue_missing\nbad_value abc\n',
    );
    expect(metricValue(parsed, 'klaytn_blockchain_head_blocknumber')).toBe(5);
    expect(parsed.errors.map((e) => e.line)).toEqual([1, 3, 4, 5]);
  });
});

describe('hostile values', () => {
  it('reads every decimal form the exposition format allows and nothing else', () => {
    const good = ['1', '-1', '+1', '1.', '.5', '1.5', '1e3', '1E+3', '-1.5e-3', '007'];
    expect(good.map((t) => parseSampleValue(t))).toEqual(good.map(Number));
    for (const bad of [
      '',
      '.',
      '+',
      '-',
      'e5',
      '1e',
      '1e+',
      '1.2.3',
      '1x',
      '0x10',
      ' 1',
      '1 ',
      '--1',
      '1e5.5',
    ])
      expect(parseSampleValue(bad), bad).toBeUndefined();
  });

  it('refuses a value longer than the cap, however well formed', () => {
    expect(parseSampleValue('1'.repeat(MAX_VALUE_CHARS))).toBe(Number('1'.repeat(MAX_VALUE_CHARS)));
    expect(parseSampleValue('1'.repeat(MAX_VALUE_CHARS + 1))).toBeUndefined();
    const parsed = parsePrometheusText(`klaytn_blockchain_head_blocknumber ${'9'.repeat(5_000)}\n`);
    expect(parsed.errors[0]?.message).toMatch(/5000 characters long \(at most 64\)/);
  });

  // Regression: the old value pattern backtracked quadratically on a digit run ending in a stray
  // character, so this input held the event loop for minutes (the test ran into vitest's timeout).
  it('reads a megabyte run of digits ending in a stray character in one pass', () => {
    const digits = '7'.repeat(1_000_000);
    expect(parseSampleValue(`${digits}x`)).toBeUndefined();
    const text = `klaytn_blockchain_head_blocknumber{a="b"} ${digits}x\nklaytn_blockchain_head_blocknumber 12\n`;
    expect(scanMetricValues(text, ['klaytn_blockchain_head_blocknumber'])).toEqual({
      klaytn_blockchain_head_blocknumber: 12,
    });
    expect(parsePrometheusText(text).errors).toHaveLength(1);
  });

  it('reads a line of a hundred thousand labels without copying it per label', () => {
    const labels = Array.from({ length: 100_000 }, (_, i) => `l${i}="v"`).join(',');
    const parsed = parsePrometheusText(`m{${labels}} 3\n`);
    expect(parsed.samples[0]?.value).toBe(3);
    expect(Object.keys(parsed.samples[0]?.labels ?? {})).toHaveLength(100_000);
  });
});

describe('targeted scan for a few metrics', () => {
  const WANTED = [
    'klaytn_blockchain_head_blocknumber',
    'klaytn_p2p_CNPeerCountGauge',
    'klaytn_p2p_PeerCountGauge',
    'http_requests_total',
  ] as const;

  /** What the full parser finds for each wanted name. */
  function viaFullParse(text: string): Partial<Record<(typeof WANTED)[number], number>> {
    const parsed = parsePrometheusText(text);
    const out: Partial<Record<(typeof WANTED)[number], number>> = {};
    for (const name of WANTED) {
      const value = metricValue(parsed, name);
      if (value !== undefined) out[name] = value;
    }
    return out;
  }

  it('finds the same values as the full parser in kcnd output', () => {
    expect(scanMetricValues(KCND_SAMPLE, WANTED)).toEqual(viaFullParse(KCND_SAMPLE));
    expect(scanMetricValues(KCND_SAMPLE, WANTED)).toEqual({
      klaytn_blockchain_head_blocknumber: 171234567,
      klaytn_p2p_CNPeerCountGauge: 21,
      klaytn_p2p_PeerCountGauge: 23,
    });
  });

  it('ignores comments, longer names, names inside other lines and unreadable lines, as the full parser does', () => {
    const tricky =
      '# HELP klaytn_blockchain_head_blocknumber 99\n' +
      '# TYPE klaytn_p2p_PeerCountGauge gauge\n' +
      'klaytn_blockchain_head_blocknumber_total 1\n' +
      'other_metric{note="klaytn_blockchain_head_blocknumber 3"} 2\n' +
      'prefix\rklaytn_p2p_CNPeerCountGauge 8\n' +
      'klaytn_blockchain_head_blocknumber abc\n' +
      'klaytn_blockchain_head_blocknumber\n' +
      '  klaytn_blockchain_head_blocknumber 1.5e3 1395066363000\r\n' +
      'klaytn_blockchain_head_blocknumber 7\n' +
      'http_requests_total{method="post",path="/a b"} 1027\n' +
      '\tklaytn_p2p_CNPeerCountGauge\t+Inf\n' +
      'klaytn_p2p_PeerCountGauge';
    const scanned = scanMetricValues(tricky, WANTED);
    expect(scanned).toEqual(viaFullParse(tricky));
    expect(scanned).toEqual({
      klaytn_blockchain_head_blocknumber: 1500,
      klaytn_p2p_CNPeerCountGauge: Number.POSITIVE_INFINITY,
      http_requests_total: 1027,
    });
  });

  it('leaves out a metric that is not there', () => {
    expect(scanMetricValues('go_goroutines 12\n', WANTED)).toEqual({});
  });
});
