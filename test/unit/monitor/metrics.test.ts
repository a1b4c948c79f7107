import { describe, expect, it } from 'vitest';
import { createMonitorMetrics } from '../../../src/monitor/metrics.js';

/** The value of one exported series, or undefined when it is not exported. */
async function series(
  metrics: ReturnType<typeof createMonitorMetrics>,
  name: string,
): Promise<number | undefined> {
  const line = (await metrics.render()).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('monitor metrics', () => {
  it('moves the condition series of a node from the old condition to the new one, leaving the others at 0', async () => {
    const metrics = createMonitorMetrics();
    metrics.setCondition('cn1', 'healthy');
    metrics.setCondition('cn1', 'healthy');
    metrics.setCondition('cn1', 'stalled');
    metrics.setCondition('cn1', 'down');

    expect(await series(metrics, 'cellops_node_condition{node="cn1",condition="down"}')).toBe(1);
    expect(await series(metrics, 'cellops_node_condition{node="cn1",condition="stalled"}')).toBe(0);
    expect(await series(metrics, 'cellops_node_condition{node="cn1",condition="healthy"}')).toBe(0);
    expect(await series(metrics, 'cellops_node_condition{node="cn1",condition="lagging"}')).toBe(0);
  });

  it('moves the alert state series of a node, each node on its own', async () => {
    const metrics = createMonitorMetrics();
    metrics.setAlertState('cn1', 'none');
    metrics.setAlertState('cn2', 'open');
    metrics.setAlertState('cn1', 'open');
    metrics.setAlertState('cn1', 'acknowledged');

    expect(await series(metrics, 'cellops_alert_state{node="cn1",state="acknowledged"}')).toBe(1);
    expect(await series(metrics, 'cellops_alert_state{node="cn1",state="open"}')).toBe(0);
    expect(await series(metrics, 'cellops_alert_state{node="cn1",state="none"}')).toBe(0);
    expect(await series(metrics, 'cellops_alert_state{node="cn2",state="open"}')).toBe(1);
    expect(await series(metrics, 'cellops_alert_state{node="cn2",state="muted"}')).toBe(0);
  });

  it('exports the latest height and lag, also when a value comes back to an earlier one', async () => {
    const metrics = createMonitorMetrics();
    metrics.setHeight('cn1', 10);
    metrics.setHeight('cn1', 11);
    metrics.setLag('cn1', 3);
    metrics.setLag('cn1', 0);
    metrics.setLag('cn1', 3);

    expect(await series(metrics, 'cellops_node_height{node="cn1"}')).toBe(11);
    expect(await series(metrics, 'cellops_node_lag_blocks{node="cn1"}')).toBe(3);
  });
});
