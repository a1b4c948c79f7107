/**
 * Placeholder for the `image` runbook (DESIGN.md §2.3), which another helper is writing: it keeps the
 * registry compiling and refuses to run.
 */
import { CELL_LOCK, cnParamsSchema, type CnParams } from './failover-params.js';
import type { RunbookDefinition } from './types.js';

export const imageRunbook: RunbookDefinition<CnParams> = {
  id: 'image',
  version: 0,
  title: 'Machine image of a CN',
  params: cnParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary: (params) => `image ${params.cn}`,
  steps() {
    throw new Error('the image runbook is not built yet');
  },
};
