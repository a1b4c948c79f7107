/**
 * A node's health from its Prometheus metrics (`:61001/metrics`, on by default): the head block and the
 * peer gauges. Only the few gauges wanted are scanned for; the whole text is parsed only to say what was
 * there when the height is missing.
 */
import { ExternalError } from '../../errors.js';
import type { NodeEndpoint, NodeHealth } from '../../ports/node-rpc.js';
import type { Deadline } from './deadline.js';
import type { HttpClient } from './http-client.js';
import { BadRpcResponseError, httpTarget } from './json-rpc.js';
import { displayUrl } from './node-failure.js';
import { parsePrometheusText, scanMetricValues } from './prometheus-text.js';

/** The metric names kcnd/kpnd export (prefix `klaytn_` even on Kaia). */
export const KAIA_METRICS = {
  height: 'klaytn_blockchain_head_blocknumber',
  cnPeers: 'klaytn_p2p_CNPeerCountGauge',
  pnPeers: 'klaytn_p2p_PNPeerCountGauge',
  totalPeers: 'klaytn_p2p_PeerCountGauge',
} as const;

const HEALTH_METRICS = [
  KAIA_METRICS.height,
  KAIA_METRICS.cnPeers,
  KAIA_METRICS.pnPeers,
  KAIA_METRICS.totalPeers,
] as const;

export async function metricsHealth(http: HttpClient, node: NodeEndpoint, dl: Deadline): Promise<NodeHealth> {
  const target = httpTarget(node.metricsUrl);
  const response = await http({
    method: 'GET',
    url: target.url,
    headers: { ...target.headers, accept: 'text/plain;version=0.0.4' },
    ...dl.http(),
  });
  const { text } = response;
  if (!response.ok)
    throw new BadRpcResponseError(
      'GET metrics',
      `HTTP ${response.status} ${response.statusText}`,
      response.status,
    );
  const values = scanMetricValues(text, HEALTH_METRICS);
  const height = values[KAIA_METRICS.height];
  if (height === undefined || !Number.isFinite(height) || height < 0)
    throw new ExternalError(
      'node_metrics_missing',
      `${node.name} at ${displayUrl(node.metricsUrl)} serves no usable ${KAIA_METRICS.height} ` +
        `(${parsePrometheusText(text).samples.length} samples read): check METRICS=1 and PROMETHEUS=1 in the node's conf and ` +
        `that the URL is its Prometheus port (default 61001).`,
      { retryable: true },
    );
  const cnPeers = gauge(values[KAIA_METRICS.cnPeers]);
  const pnPeers = gauge(values[KAIA_METRICS.pnPeers]);
  const totalPeers = gauge(values[KAIA_METRICS.totalPeers]);
  return {
    height,
    ...(cnPeers !== undefined ? { cnPeers } : {}),
    ...(pnPeers !== undefined ? { pnPeers } : {}),
    ...(totalPeers !== undefined ? { totalPeers } : {}),
    source: 'metrics',
  };
}

function gauge(value: number | undefined): number | undefined {
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}
