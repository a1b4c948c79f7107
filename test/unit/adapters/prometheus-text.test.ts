import { describe, expect, it } from 'vitest';
import { metricValue, parsePrometheusText } from '../../../src/adapters/rpc/prometheus-text.js';

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
