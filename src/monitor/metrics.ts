/**
 * `/metrics` for the monitor (and, through a hook, the engine's run states). Its own prom-client Registry,
 * never the global one, so that several monitors in one process (tests, benchmarks) do not collide.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeCondition } from './types.js';
import { NODE_CONDITIONS } from './types.js';

/** Alert states of a node's incident, one gauge series each (1 for the current one). */
export const ALERT_STATES = ['none', 'open', 'acknowledged', 'muted'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

export interface MonitorMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  observeProbe(node: string, latencyMs: number, ok: boolean): void;
  setHeight(node: string, height: number): void;
  setLag(node: string, lag: number): void;
  setReferenceHeight(height: number): void;
  setCondition(node: string, condition: NodeCondition): void;
  setAlertState(node: string, state: AlertState): void;
  /** Hook for the engine: the number of runs in each state (running, waiting, paused, …). */
  setRunStates(counts: Readonly<Record<string, number>>): void;
  render(): Promise<string>;
}

export function createMonitorMetrics(options: { readonly prefix?: string } = {}): MonitorMetrics {
  const prefix = options.prefix ?? 'cellops_';
  const registry = new Registry();
  const height = new Gauge({
    name: `${prefix}node_height`,
    help: 'Block height last reported by the node',
    labelNames: ['node'],
    registers: [registry],
  });
  const lag = new Gauge({
    name: `${prefix}node_lag_blocks`,
    help: 'Reference height minus the node height, in blocks',
    labelNames: ['node'],
    registers: [registry],
  });
  const reference = new Gauge({
    name: `${prefix}reference_height`,
    help: 'Highest height of the healthy reference nodes (PNs and extra endpoints)',
    registers: [registry],
  });
  const latency = new Histogram({
    name: `${prefix}probe_duration_seconds`,
    help: 'Duration of one health probe',
    labelNames: ['node'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const errors = new Counter({
    name: `${prefix}probe_errors_total`,
    help: 'Failed or timed-out health probes',
    labelNames: ['node'],
    registers: [registry],
  });
  const condition = new Gauge({
    name: `${prefix}node_condition`,
    help: 'The node condition: 1 for the current one, 0 for the others',
    labelNames: ['node', 'condition'],
    registers: [registry],
  });
  const alert = new Gauge({
    name: `${prefix}alert_state`,
    help: 'State of the node alert: 1 for the current one, 0 for the others',
    labelNames: ['node', 'state'],
    registers: [registry],
  });
  const runs = new Gauge({
    name: `${prefix}runs`,
    help: 'Runbook runs by state',
    labelNames: ['state'],
    registers: [registry],
  });
  const knownRunStates = new Set<string>();
  // What each node's series were last set to. The monitor reports every node every interval, and a
  // prom-client set sorts the label names and allocates a new entry each time: at 1,000 nodes that was
  // 11,000 sets a second for the condition and alert series alone, nearly all of them changing nothing.
  const last = {
    height: new Map<string, number>(),
    lag: new Map<string, number>(),
    condition: new Map<string, NodeCondition>(),
    alert: new Map<string, AlertState>(),
  };

  return {
    registry,
    contentType: registry.contentType,
    observeProbe(node, latencyMs, ok) {
      latency.observe({ node }, latencyMs / 1000);
      if (!ok) errors.inc({ node });
    },
    setHeight(node, value) {
      if (last.height.get(node) === value) return;
      last.height.set(node, value);
      height.set({ node }, value);
    },
    setLag(node, value) {
      if (last.lag.get(node) === value) return;
      last.lag.set(node, value);
      lag.set({ node }, value);
    },
    setReferenceHeight: (value) => reference.set(value),
    setCondition(node, current) {
      const previous = last.condition.get(node);
      if (previous === current) return;
      last.condition.set(node, current);
      if (previous === undefined) {
        for (const c of NODE_CONDITIONS) condition.set({ node, condition: c }, c === current ? 1 : 0);
      } else {
        condition.set({ node, condition: previous }, 0);
        condition.set({ node, condition: current }, 1);
      }
    },
    setAlertState(node, current) {
      const previous = last.alert.get(node);
      if (previous === current) return;
      last.alert.set(node, current);
      if (previous === undefined) {
        for (const s of ALERT_STATES) alert.set({ node, state: s }, s === current ? 1 : 0);
      } else {
        alert.set({ node, state: previous }, 0);
        alert.set({ node, state: current }, 1);
      }
    },
    setRunStates(counts) {
      for (const state of knownRunStates) if (!(state in counts)) runs.set({ state }, 0);
      for (const [state, count] of Object.entries(counts)) {
        knownRunStates.add(state);
        runs.set({ state }, count);
      }
    },
    render: () => registry.metrics(),
  };
}
