/**
 * `roles <cn> set served-by=<node> standby=<node|none>` (docs/runbooks.md §set-roles): records a change of
 * roles made by hand (a fail-back done outside cellops, a standby set up by hand), so that status, monitoring
 * and the next failover follow the truth. A claim is recorded only once it is checked: the machine said to
 * serve answers with the CN's node address, and the standby answers with an address of its own. The record
 * itself waits for an approval (it changes what the next failover acts on), and the run is audited like any
 * other.
 */
import { z } from 'zod';
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import { InputError, SafetyGateError } from '../errors.js';
import { currentRoles, type CellState } from '../ports/cell-state.js';
import { cnAddress } from './check-conditions.js';
import { resolveCn, reportedAddress } from './cell-nodes.js';
import { CELL_LOCK } from './failover-params.js';
import { opsOf } from './node-ops.js';
import { sameAddress } from './nodekey.js';
import type { RunbookDefinition, StepDefinition } from './types.js';

const nodeName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);

export const setRolesParamsSchema = z
  .object({
    cn: nodeName,
    servedBy: nodeName,
    /** Absent: the CN has no standby. */
    standby: nodeName.optional(),
    /** Slack user id of who asked: the history says who set the roles. */
    by: z.string().regex(/^[UW][A-Z0-9]{2,}$/),
  })
  .strict();

export type SetRolesParams = z.output<typeof setRolesParamsSchema>;
type SetRolesStep = StepDefinition<SetRolesParams>;

const FACTS = { cnAddress: 'setRoles.cnAddress', standbyAddress: 'setRoles.standbyAddress' } as const;

/** The machines of the claim, refused when they cannot hold these roles (InputError: nothing runs). */
export function claimedMachines(
  config: CellopsConfig,
  params: Pick<SetRolesParams, 'cn' | 'servedBy' | 'standby'>,
): { served: NodeInventoryEntry; standby: NodeInventoryEntry | undefined } {
  resolveCn(config, params.cn);
  const machine = (name: string, what: string): NodeInventoryEntry => {
    const node = config.nodes[name];
    if (!node) throw new InputError(`${what} "${name}" is not a node of the configuration.`);
    if (node.role === 'pn' || (node.role === 'cn' && name !== params.cn))
      throw new InputError(
        `${what} ${name} is a ${node.role} machine; it cannot serve or stand by for ${params.cn}.`,
      );
    return node;
  };
  const served = machine(params.servedBy, 'served-by');
  const standby = params.standby === undefined ? undefined : machine(params.standby, 'standby');
  if (standby?.name === served.name)
    throw new InputError(
      `served-by and standby are both ${served.name}: the standby must be another machine.`,
    );
  return { served, standby };
}

/**
 * Refuses a claim that would give a machine two jobs: serving or standing by for another CN now. Used by
 * the command before starting (a clear answer, nothing runs) and by the run's check.
 */
export async function refuseTakenMachines(
  config: CellopsConfig,
  state: CellState,
  params: Pick<SetRolesParams, 'cn' | 'servedBy' | 'standby'>,
): Promise<void> {
  const others = Object.values(config.nodes).filter((n) => n.role === 'cn' && n.name !== params.cn);
  for (const other of others) {
    const roles = await currentRoles(state, config, other.name);
    for (const name of [params.servedBy, params.standby]) {
      if (name === undefined) continue;
      if (roles.servedBy === name)
        throw new InputError(`${name} serves ${other.name} now; it cannot also work for ${params.cn}.`);
      if (roles.standby === name)
        throw new InputError(
          `${name} stands by for ${other.name} now; it cannot also work for ${params.cn}.`,
        );
    }
  }
}

export const setRolesRunbook: RunbookDefinition<SetRolesParams> = {
  id: 'set-roles',
  version: 1,
  title: 'Record roles set by hand',
  params: setRolesParamsSchema,
  lockKey: () => CELL_LOCK,
  node: (params) => params.cn,
  summary: (params) =>
    `roles of ${params.cn}: served by ${params.servedBy}, ${params.standby === undefined ? 'no standby' : `standby ${params.standby}`}`,
  steps(params, config) {
    claimedMachines(config, params);
    return [checkClaim, recordRoles];
  },
};

const checkClaim: SetRolesStep = {
  id: 'check-claim',
  title: 'Check that the claimed roles are true',
  destructive: false,
  readOnly: true,
  describe: ({ params }) =>
    `Asks ${params.servedBy} for the node address it runs (kaia_nodeAddress, or IPC over SSH) and compares it with ${params.cn}'s recorded address; ${
      params.standby === undefined
        ? 'no standby is claimed'
        : `asks ${params.standby} the same and requires an address of its own (not ${params.cn}'s)`
    }. Nothing is changed.`,
  async run(ctx) {
    const { params, config } = ctx;
    const { served, standby } = claimedMachines(config, params);
    await refuseTakenMachines(config, ctx.ports.state, params);
    const expected = await cnAddress(ctx, opsOf(ctx), resolveCn(config, params.cn));
    if (expected === undefined)
      throw new SafetyGateError(
        `${params.cn}'s node address is unknown (no backup recorded or readable): run /cell backup-nodekey ${params.cn} first. Nothing was recorded.`,
      );
    const servedAddress = await reportedAddress(ctx.ports, served.endpoint, ctx.signal);
    if (servedAddress === undefined)
      throw new SafetyGateError(
        `${served.name} does not report its node address, so the claim cannot be checked. Nothing was recorded.`,
      );
    if (!sameAddress(servedAddress, expected))
      throw new SafetyGateError(
        `${served.name} runs ${servedAddress}, not ${params.cn}'s ${expected}: it does not serve ${params.cn}. Nothing was recorded.`,
      );
    ctx.output(`${served.name} runs ${params.cn}'s address ${expected}`);
    ctx.setFact(FACTS.cnAddress, expected);
    if (!standby) return;
    const standbyAddress = await reportedAddress(ctx.ports, standby.endpoint, ctx.signal);
    if (standbyAddress === undefined)
      throw new SafetyGateError(
        `${standby.name} does not report its node address, so it cannot be checked that it does not run ${params.cn}'s key: start it with its own key first. Nothing was recorded.`,
      );
    if (sameAddress(standbyAddress, expected))
      throw new SafetyGateError(
        `${standby.name} runs ${params.cn}'s key (${expected}) too: two nodes on one key double-sign. Stop it and give it its own key. Nothing was recorded.`,
      );
    ctx.output(`${standby.name} runs its own address ${standbyAddress}`);
    ctx.setFact(FACTS.standbyAddress, standbyAddress);
  },
};

const recordRoles: SetRolesStep = {
  id: 'record-roles',
  title: 'Record the roles',
  // Not destructive on a machine, but it decides what the next failover stops and starts: approved first.
  destructive: true,
  describe: ({ params }) =>
    `Records in the cell state that ${params.servedBy} serves ${params.cn} and ${
      params.standby === undefined ? 'no machine stands by' : `${params.standby} stands by`
    }, set by hand by <@${params.by}>; /cell roles ${params.cn} shows it in the history.`,
  async run(ctx) {
    const { params } = ctx;
    const recorded = await ctx.ports.state.recordRoles({
      cn: params.cn,
      servedBy: params.servedBy,
      ...(params.standby === undefined ? {} : { standby: params.standby }),
      at: ctx.ports.clock.now(),
      runId: ctx.runId,
      by: params.by,
      reason: 'set by hand',
    });
    ctx.output(
      `${params.cn}: served by ${recorded.servedBy}, ${recorded.standby === undefined ? 'no standby' : `standby ${recorded.standby}`}`,
    );
  },
  async verify(ctx) {
    return (await ctx.ports.state.roles(ctx.params.cn))?.runId === ctx.runId;
  },
};

/** For tests: the steps in order. */
export function setRolesSteps(): SetRolesStep[] {
  return [checkClaim, recordRoles];
}
