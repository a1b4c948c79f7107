/**
 * The standby failover's address steps (docs/runbooks.md §Standby failover): move the active's IP to the
 * standby by the configured method, or have a person confirm a manual move.
 */
import type { FailoverStep } from './failover-params.js';
import { standbyTargetOf } from './cell-nodes.js';
import { STANDBY_FACTS } from './failover-facts.js';
import { ipOf, nodeCommands, onHost, opsOf } from './node-ops.js';
import { aliasIpMoved, eipMoved, moveAliasIp, moveAliasIpBack, moveEip, moveEipBack } from './standby-ip.js';

export const moveIp: FailoverStep = {
  id: 'move-ip',
  title: "Move the active's IP to the standby",
  destructive: true,
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') {
      const { address, device } = ip;
      return [
        `• ${onHost(t.standby.host, nodeCommands.ipAddr('add', address, device))}`,
        `• ${onHost(t.cn.host, nodeCommands.ipAddr('del', address, device))} when ${t.cn.name} is reachable and still holds it. If ${t.cn.name} answers but the del fails, the address is taken off ${t.standby.name} again and the run stops (never on two hosts).`,
        `• The move is announced (${onHost(t.standby.host, nodeCommands.gratuitousArp(device, ipOf(address)))}) while kcnd starts, so that it does not hold up the start.`,
        `Undo: the reverse — delete it on ${t.standby.name}, add it back on ${t.cn.name} when reachable.`,
      ].join('\n');
    }
    if (ip.method === 'eip')
      return [
        `Check that Elastic IP ${ip.allocationId} is held by ${t.cn.name}'s instance ${t.cn.instanceId ?? '(none configured)'}, by nothing, or by an instance an approver confirmed; then EC2 AssociateAddress ${ip.allocationId} → instance ${t.standby.instanceId ?? '(standby has no instanceId)'} with AllowReassociation.`,
        `Undo: associate it back with the instance that held it before.`,
      ].join('\n');
    return `Not needed here: ${t.cn.name} moves its IP by hand (next step).`;
  },
  async when(ctx) {
    return standbyTargetOf(ctx).failover.ip.method !== 'manual';
  },
  async run(ctx) {
    const t = standbyTargetOf(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') await moveAliasIp(ctx, opsOf(ctx), t, ip);
    else if (ip.method === 'eip') await moveEip(ctx, t, ip);
  },
  async verify(ctx) {
    const t = standbyTargetOf(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') return aliasIpMoved(opsOf(ctx), t, ip);
    if (ip.method === 'eip') return eipMoved(ctx, t, ip);
    return true;
  },
  async undo(ctx) {
    const t = standbyTargetOf(ctx);
    const ip = t.failover.ip;
    if (ip.method === 'alias') await moveAliasIpBack(ctx, opsOf(ctx), t, ip);
    else if (ip.method === 'eip') await moveEipBack(ctx, ip);
  },
};

export const confirmIpMoved: FailoverStep = {
  id: 'confirm-ip-moved',
  title: "Confirm the active's IP now points at the standby",
  destructive: true,
  kind: 'manual',
  describe(ctx) {
    const t = standbyTargetOf(ctx);
    const ip = t.failover.ip;
    if (ip.method !== 'manual') return `Not needed here: cellops moves the IP itself (method ${ip.method}).`;
    return [
      `Move ${t.cn.name}'s IP (${t.cn.host.address}'s service address) to ${t.standby.name} (${t.standby.host.address}) by hand, then approve to confirm it was done.`,
      ip.instructions
        ? `Instructions: ${ip.instructions}`
        : `No instructions are configured (nodes.${t.cn.name}.failover.ip.instructions).`,
    ].join('\n');
  },
  async when(ctx) {
    return standbyTargetOf(ctx).failover.ip.method === 'manual';
  },
  async run(ctx) {
    ctx.setFact(STANDBY_FACTS.ipMoveConfirmed, true);
    ctx.output(`an approver confirmed that the IP was moved to ${standbyTargetOf(ctx).standby.name}`);
  },
  async verify(ctx) {
    return ctx.fact<boolean>(STANDBY_FACTS.ipMoveConfirmed) === true;
  },
};
