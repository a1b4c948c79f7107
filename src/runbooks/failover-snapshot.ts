/**
 * `failover` in mode `snapshot` (docs/runbooks.md §Snapshot failover; the "Machine Image & Snapshot"
 * procedure of the Kaia HA guide): replace a failed CN on EC2 with a new instance launched from the CN's
 * machine image and a data volume restored from a PN's chaindata snapshot, then give it the failed CN's
 * nodekey and addresses.
 *
 * Shape of the run, and why:
 * - The PN's data: kpnd stopped (and no kpn left), `sync` (and fsfreeze when configured), CreateSnapshot,
 *   kpnd started again as soon as the snapshot has started (EBS snapshots are point-in-time at creation).
 *   The launch does not wait for the snapshot, which completes inside EBS while the instance boots; only
 *   `attach-volume` waits for it (snapshot-data-steps.ts).
 * - The identity moves with the guide's gaps closed (snapshot-identity-steps.ts): the failed CN's instance
 *   is stopped and seen stopped before its key is written anywhere; the replacement's kcnd is stopped,
 *   disabled and no kcn runs before the key is installed; starting kcnd with that key is approved; verify is
 *   the same strict check as the standby mode's (verify-after-start.ts) and fails the run with rollback.
 * - A destructive step that fails part way runs its own undo too (the engine), then those of the completed
 *   steps in reverse: kpnd started again, the installed key removed (kcnd stopped first), the addresses
 *   moved back, kcnd stopped on the replacement. Fencing is never undone: the failed CN stays stopped.
 * - Nothing cellops creates is deleted automatically: a failed step lists what the run left (tagged
 *   `cellops:run-id`), and the `cleanup` runbook removes it, with an approval.
 * - Facts are a cache: each cloud resource is found again by its run-id tag when a crash lost the fact, so
 *   a resumed run never creates a second snapshot, instance or volume.
 */
import { factOf, requireFactOf } from './shaped-facts.js';
import type { FailoverStep } from './failover-params.js';
import { pnReferenceHeight, snapshotTargetOf } from './cell-nodes.js';
import { listingLeftovers } from './cloud-leftovers.js';
import { SNAPSHOT_FACTS, requireFact } from './failover-facts.js';
import { peekSnapshotTarget, replacementWords } from './failover-plan-text.js';
import {
  DEFAULT_SNAPSHOT_TIMINGS,
  type FailoverOptions,
  type SnapshotFailoverTimings,
} from './failover-timings.js';
import { replacementOf } from './replacement.js';
import { replacementHostKeyStep } from './replacement-host-key.js';
import { attachVolume, launch, prepareData, snapshot, stopPn } from './snapshot-data-steps.js';
import {
  confirmEipHolder,
  fenceFailedCn,
  installNodekey,
  moveIp,
  startKcnd,
  verify,
} from './snapshot-identity-steps.js';
import {
  checkBackup,
  checkEip,
  checkImage,
  checkPnLinks,
  choosePn,
  locateFailedCn,
  refuseIfHealthy,
} from './snapshot-preflight.js';
import { SafetyGateError } from '../errors.js';

/**
 * The steps of docs/runbooks.md §Snapshot failover, in order; every step after the preflight lists what a
 * failure left.
 */
export function snapshotFailoverSteps(
  options: FailoverOptions<SnapshotFailoverTimings> = {},
): FailoverStep[] {
  const timings: SnapshotFailoverTimings = { ...DEFAULT_SNAPSHOT_TIMINGS, ...options.timings };
  return [
    preflight(timings),
    ...[
      stopPn(timings),
      snapshot,
      launch(timings),
      replacementHostKeyStep(timings),
      attachVolume(timings),
      prepareData(timings),
      fenceFailedCn(timings),
      installNodekey(timings),
      confirmEipHolder,
      moveIp,
      startKcnd(timings),
      verify(timings),
      record,
    ].map(listingLeftovers),
  ];
}

function preflight(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: 'preflight',
    title: 'Preflight: image, nodekey backup, a healthy PN to snapshot',
    readOnly: true,
    destructive: false,
    timeoutMs: 2 * 60_000 + 4 * timings.probeMs,
    describe: (ctx) => {
      const p = peekSnapshotTarget(ctx);
      const backup = p.failover?.nodekeyBackup;
      return (
        `Read-only. Check that a CN machine image is recorded (${p.failover?.imageId ?? `latest recorded by \`/cell image ${ctx.params.cn}\``}, EC2 DescribeImages: available); ` +
        `that the nodekey backup ${backup ? `${backup.path} on ${backup.host}` : '(not configured)'} exists, is 64 hex characters and matches its recorded checksum and node address; ` +
        `that one of ${p.snapshotFrom.join(', ') || '(no snapshotFrom)'} is healthy and has a known data volume (warn if stopping it leaves no healthy PN); ` +
        `that ${ctx.params.cn} is really unhealthy${ctx.params.force ? ' (skipped: --force)' : ''} and has an instance to fence; that Elastic IP ${p.allocationId ?? '(not configured)'} exists and is held by ${ctx.params.cn}'s instance or nothing (anything else will need an approver's confirmation); ` +
        `and which addresses the PNs dial ${ctx.params.cn} at (their static-nodes.json), warning when one will not follow ${ctx.params.cn} to the replacement.`
      );
    },
    run: async (ctx) => {
      const t = snapshotTargetOf(ctx);
      ctx.setFact(SNAPSHOT_FACTS.startedAt, ctx.ports.clock.now());
      const failedHost = await locateFailedCn(ctx, t);
      const { height, heights } = await pnReferenceHeight(ctx.ports, ctx.config, {
        timeoutMs: timings.probeMs,
        signal: ctx.signal,
      });
      if (height === undefined)
        throw new SafetyGateError(
          `no PN of the cell answers its metrics/RPC: there is no chaindata to snapshot`,
        );
      await refuseIfHealthy(ctx, t, failedHost, { height, heights }, timings);
      await checkImage(ctx, t);
      await checkBackup(ctx, t);
      choosePn(ctx, t, { height, heights });
      const eip = await checkEip(ctx, t);
      await checkPnLinks(ctx, t, eip.publicIp);
    },
    verify: (ctx) =>
      Promise.resolve(
        [
          SNAPSHOT_FACTS.imageId,
          SNAPSHOT_FACTS.pn,
          SNAPSHOT_FACTS.pnVolumeId,
          SNAPSHOT_FACTS.failedAddress,
          SNAPSHOT_FACTS.failedInstanceId,
        ].every((k) => ctx.fact(k) !== undefined),
      ),
  };
}

const record: FailoverStep = {
  id: 'record',
  title: 'Record the replacement as the CN',
  destructive: false,
  timeoutMs: 60_000,
  describe: (ctx) =>
    `Record in the cell state that ${replacementWords(ctx)} now serves ${ctx.params.cn}, so status, monitoring and the next failover see it, and that ${peekSnapshotTarget(ctx).cn?.instanceId ?? 'the old instance'} was fenced: the monitor keeps watching it.`,
  run: async (ctx) => {
    const { instanceId, host } = replacementOf(ctx);
    const previous = await ctx.ports.state.role(ctx.params.cn);
    const failedInstanceId = requireFactOf(ctx, SNAPSHOT_FACTS.failedInstanceId, 'instanceId');
    const failedKeys = ctx.fact<readonly string[]>(SNAPSHOT_FACTS.failedHostKeys);
    await ctx.ports.state.setRole({
      role: ctx.params.cn,
      servedBy: instanceId,
      address: host.address,
      instanceId,
      ...(host.hostKeys === undefined ? {} : { hostKeys: host.hostKeys }),
      since: ctx.ports.clock.now(),
      runId: ctx.runId,
      fenced: {
        name: previous?.servedBy ?? ctx.params.cn,
        address: requireFactOf(ctx, SNAPSHOT_FACTS.failedHost, 'host'),
        instanceId: failedInstanceId,
        ...(failedKeys === undefined ? {} : { hostKeys: failedKeys }),
        nodeAddress: requireFact<string>(ctx, SNAPSHOT_FACTS.failedAddress),
      },
    });
    ctx.output(
      `${ctx.params.cn} is now served by ${instanceId} at ${host.address}; its old instance ${failedInstanceId} stays stopped and watched`,
    );
  },
  verify: async (ctx) => {
    const role = await ctx.ports.state.role(ctx.params.cn);
    return (
      role !== undefined &&
      role.instanceId === factOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId') &&
      role.runId === ctx.runId
    );
  },
};
