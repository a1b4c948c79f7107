/**
 * The `failover` runbook (DESIGN.md §2.1–2.2): one id for both modes; the steps come from the mode, which
 * defaults to the CN's configured one. A requested mode that differs from the configuration is refused
 * rather than run against a cell not set up for it.
 */
import { CELL_LOCK, failoverParamsSchema, type FailoverParams } from './failover-params.js';
import type { RunbookDefinition } from './types.js';
import { resolveMode, resolveStandby } from './cell-nodes.js';
import { standbyFailoverSteps } from './failover-standby.js';
import { snapshotFailoverSteps } from './failover-snapshot.js';

export const failoverRunbook: RunbookDefinition<FailoverParams> = {
  id: 'failover',
  version: 2,
  title: 'Fail over a CN',
  params: failoverParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary(params, config) {
    const mode = resolveMode(config, params.cn, params.mode);
    const switchover = params.force ? ', forced' : '';
    if (mode === 'standby')
      return `failover ${params.cn} (standby → ${resolveStandby(config, params.cn).standby.name}${switchover})`;
    return `failover ${params.cn} (snapshot${switchover})`;
  },
  steps(params, config) {
    const mode = resolveMode(config, params.cn, params.mode);
    if (mode === 'standby') {
      resolveStandby(config, params.cn);
      return standbyFailoverSteps();
    }
    return snapshotFailoverSteps();
  },
};
