/**
 * The `failover` runbook (docs/runbooks.md §Standby failover, §Snapshot failover, §Switchover): one id for
 * both modes; the steps come from the mode, which defaults to the CN's configured one. A requested mode that
 * differs from the configuration is refused rather than run against a cell not set up for it.
 *
 * In standby mode the run follows the recorded roles, not the configuration's first layout: `prepare`
 * settles, when the run is requested, which machine serves the CN now (`active`) and which is its standby,
 * so `/failover cn1` works again after a failover once a standby was rebuilt, either way, any number of
 * times. With no standby ready it is refused, saying how to get one. `--switchover` is the planned move
 * with both machines healthy (switchover.ts).
 */
import { CELL_LOCK, failoverParamsSchema, type FailoverParams } from './failover-params.js';
import type { PrepareContext, RunbookDefinition } from './types.js';
import { resolveMode, standbyLayout, standbyTargetOf } from './cell-nodes.js';
import { standbyFailoverSteps } from './failover-standby.js';
import { snapshotFailoverSteps } from './failover-snapshot.js';
import { switchoverSteps } from './switchover.js';
import { InputError } from '../errors.js';

async function prepare(params: FailoverParams, { config, state }: PrepareContext): Promise<FailoverParams> {
  const mode = resolveMode(config, params.cn, params.mode);
  if (mode !== 'standby') {
    if (params.switchover)
      throw new InputError(
        `${params.cn} fails over in mode ${mode}: a planned switchover needs a standby machine (mode standby). Use /failover ${params.cn} --force to replace a healthy CN.`,
      );
    return params;
  }
  const layout = await standbyLayout(config, state, params.cn);
  if (layout.standby === undefined) {
    const since = layout.recorded ? ` since run ${layout.recorded.runId}` : '';
    const former = layout.recorded?.previous;
    throw new InputError(
      `${params.cn} is served by ${layout.active}${since} and has no standby ready, so there is nothing to fail over to. Make one with /cell rebuild-standby ${params.cn}${former ? ` (by default on ${former}, the machine that served it before)` : ''}; then /failover ${params.cn} works again.`,
    );
  }
  return { ...params, active: layout.active, standby: layout.standby };
}

export const failoverRunbook: RunbookDefinition<FailoverParams> = {
  id: 'failover',
  // 2: follows the recorded roles (active/standby parameters), --switchover.
  version: 2,
  title: 'Fail over a CN',
  params: failoverParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary(params, config) {
    const mode = resolveMode(config, params.cn, params.mode);
    if (mode === 'standby') {
      const t = standbyTargetOf({ config, params });
      const kind = params.switchover ? ', switchover' : params.force ? ', forced' : '';
      const from = t.cn.name === params.cn ? '' : `served by ${t.cn.name}, `;
      return `failover ${params.cn} (${from}standby → ${t.standby.name}${kind})`;
    }
    return `failover ${params.cn} (snapshot${params.force ? ', forced' : ''})`;
  },
  steps(params, config) {
    const mode = resolveMode(config, params.cn, params.mode);
    if (mode === 'standby') {
      const t = standbyTargetOf({ config, params });
      return params.switchover
        ? switchoverSteps()
        : standbyFailoverSteps({ eip: t.failover.ip.method === 'eip' });
    }
    return snapshotFailoverSteps();
  },
  prepare,
};
