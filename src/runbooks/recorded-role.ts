/**
 * The recorded role of a CN (who serves it after a failover), checked before a runbook follows it. The
 * record lives in Redis, so its instance and address are compared with what cellops can confirm: the
 * configuration, and the EC2 tags every instance a run launches carries. A record that disagrees stops
 * the run, naming what differs, before any call is made with it.
 */
import type { RoleAssignment } from '../ports/cell-state.js';
import { RUN_ID_TAG } from '../ports/cloud.js';
import { SafetyGateError } from '../errors.js';
import { CELL_TAG, ROLE_TAG } from './run-resources.js';
import type { StepContext } from './types.js';

/** The role recorded for `cn`, when there is one and it agrees with the configuration and EC2. */
export async function recordedRole(
  ctx: StepContext<unknown>,
  cn: string,
): Promise<RoleAssignment | undefined> {
  const role = await ctx.ports.state.role(cn);
  if (role === undefined) return undefined;
  const { config } = ctx;
  const refuse = (what: string): never => {
    throw new SafetyGateError(
      `the recorded role of ${cn} (served by ${role.servedBy} since run ${role.runId}) ${what}; ` +
        'the cell state was changed outside cellops or is out of date — check the cell by hand and record the role again before a failover',
    );
  };
  const served = config.nodes[role.servedBy];
  if (role.instanceId === undefined) {
    if (served === undefined)
      refuse(`names ${role.servedBy}, which is not a configured node, and no instance`);
    if (role.address !== undefined && role.address !== served?.host.address)
      refuse(
        `says its address is ${role.address}, but ${role.servedBy} is configured at ${served?.host.address}`,
      );
    return role;
  }
  const configured = Object.values(config.nodes).some((n) => n.instanceId === role.instanceId);
  const info = await ctx.ports.cloud.describeInstance(role.instanceId);
  if (info === undefined) refuse(`names instance ${role.instanceId}, which EC2 does not know`);
  if (!configured) {
    const tags = info?.tags ?? {};
    // A replacement carries the tags of the run that launched it. Later runs (a rebuild, roles set by
    // hand) record the role again under their own id, so the run tag must be there but need not match.
    const expected = { [CELL_TAG]: config.cell, [ROLE_TAG]: cn };
    for (const [tag, value] of Object.entries(expected))
      if (tags[tag] !== value)
        refuse(
          `names instance ${role.instanceId}, whose EC2 tag ${tag} is ${tags[tag] === undefined ? 'missing' : `"${tags[tag]}"`}, not "${value}"`,
        );
    if (!tags[RUN_ID_TAG])
      refuse(`names instance ${role.instanceId}, which has no ${RUN_ID_TAG} tag: cellops did not launch it`);
  }
  if (role.address !== undefined) {
    const known = Object.values(config.nodes).some((n) => n.host.address === role.address);
    if (!known && role.address !== info?.privateIp)
      refuse(
        `says its address is ${role.address}, which is neither a configured node's nor ${role.instanceId}'s private IP (${info?.privateIp ?? 'none'})`,
      );
  }
  return role;
}
