/**
 * The readiness condition of `check <cn>` about the replacement's SSH host key (snapshot mode): which way
 * applies (`nodes.<cn>.failover.launch.hostKeys`) and whether it can work, so that a failover does not
 * learn at the replacement, after the PN was stopped and snapshotted, that it cannot trust the new host.
 *
 * - console: EC2 must answer GetConsoleOutput (IAM ec2:GetConsoleOutput). The CN's current instance is
 *   asked, as the replacement will be; what it prints does not matter here.
 * - known_hosts: the file must list the CN's address; a replacement lands in the same subnet, so only an
 *   entry that covers the subnet (a pattern such as `10.0.2.*`) with the image's host key can work.
 */
import type { CnStep } from './failover-params.js';
import { cnTargetOf } from './cell-nodes.js';
import { CellopsError, ReadinessCheckError, describeError } from '../errors.js';

export const replacementHostKeyCondition: CnStep = {
  id: 'replacement-host-key',
  title: "The replacement's SSH host key can be learned",
  destructive: false,
  readOnly: true,
  describe(ctx) {
    const t = cnTargetOf(ctx);
    if (t.failover.mode !== 'snapshot') return 'Not applicable: standby mode launches no replacement.';
    const mode = t.failover.launch?.hostKeys ?? 'console';
    return mode === 'console'
      ? `hostKeys: console — EC2 GetConsoleOutput must answer for ${t.cn.name}'s instance (IAM ec2:GetConsoleOutput), so the replacement's key can be pinned from its console; a known_hosts entry for the replacement's address would be used instead.`
      : `hostKeys: known_hosts — known_hosts must list ${t.cn.host.address} (an entry that covers the subnet, e.g. a pattern, with the image's host key), since only known_hosts is used for the replacement.`;
  },
  async when(ctx) {
    return cnTargetOf(ctx).failover.mode === 'snapshot';
  },
  async run(ctx) {
    const t = cnTargetOf(ctx);
    const mode = t.failover.launch?.hostKeys ?? 'console';
    if (mode === 'known_hosts') {
      const known = (await ctx.ports.shell.knownHostKeys?.(t.cn.host.address)) ?? [];
      if (known.length === 0)
        throw new ReadinessCheckError(
          `hostKeys is known_hosts, but known_hosts has no entry matching ${t.cn.host.address}: a replacement launched in that subnet could not be verified. ` +
            `Add an entry for the subnet (e.g. ${t.cn.host.address.replace(/\.\d+$/, '.*')}) with the image's host key, or set nodes.${t.cn.name}.failover.launch.hostKeys: console.`,
        );
      ctx.output(`hostKeys: known_hosts — ${known.length} key(s) listed for ${t.cn.host.address}`);
      return;
    }
    const instanceId = (await ctx.ports.state.role(t.cn.name))?.instanceId ?? t.cn.instanceId;
    if (instanceId === undefined) {
      ctx.output(
        `hostKeys: console — ${t.cn.name} has no instance id to try GetConsoleOutput on; the replacement's console is read during the failover`,
      );
      return;
    }
    try {
      const output = await ctx.ports.cloud.consoleOutput(instanceId, { latest: true });
      ctx.output(
        `hostKeys: console — GetConsoleOutput answers for ${instanceId}${output === undefined ? ' (the instance no longer exists)' : ''}`,
      );
    } catch (error) {
      if (!(error instanceof CellopsError)) throw error;
      throw new ReadinessCheckError(
        `hostKeys is console, but EC2 GetConsoleOutput for ${instanceId} failed (${describeError(error)}): a failover could not pin the replacement's host key. ` +
          `Allow ec2:GetConsoleOutput, or set nodes.${t.cn.name}.failover.launch.hostKeys: known_hosts with an entry for the subnet.`,
      );
    }
  },
};
