/**
 * action_id values of the run thread's buttons. `value` is JSON `{ "runId", "stepId", "round" }` (no
 * secrets: button values are visible to clients). Alert buttons are in src/monitor/types.ts.
 */
export const RUN_ACTIONS = {
  approve: 'run:approve',
  abort: 'run:abort',
} as const;

export interface RunActionValue {
  readonly runId: string;
  readonly stepId: string;
  readonly round: number;
}
