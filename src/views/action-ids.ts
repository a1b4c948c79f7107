/**
 * action_id values of the buttons cellops posts, and the shape of their `value` (no secrets: button values
 * are visible to clients). The Bolt listeners, the sandbox console and the renderers all key on these.
 */

/**
 * The run thread's buttons; `value` is JSON `{ "runId", "stepId", "round" }`. `cleanup` (on a failed run
 * that left cloud resources) starts the `cleanup` runbook for that run; its stepId is `cleanup`.
 */
export const RUN_ACTIONS = {
  approve: 'run:approve',
  abort: 'run:abort',
  cleanup: 'run:cleanup',
} as const;

export interface RunActionValue {
  readonly runId: string;
  readonly stepId: string;
  readonly round: number;
}

/** The alert message's buttons; `value` is JSON `{ "node": string, "incident": string }`. */
export const ALERT_ACTIONS = {
  startFailover: 'alert:failover',
  mute: 'alert:mute',
  acknowledge: 'alert:ack',
} as const;

export type AlertActionKind = keyof typeof ALERT_ACTIONS;

/** Which alert button an action_id is; undefined for any other action. */
export function alertActionKind(actionId: string): AlertActionKind | undefined {
  return (Object.keys(ALERT_ACTIONS) as AlertActionKind[]).find((kind) => ALERT_ACTIONS[kind] === actionId);
}
