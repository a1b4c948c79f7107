/**
 * The facts the two failover modes record between steps: addresses, ids, checksums and flags, never a key.
 * A concept both modes record has one name in both; the string is the key stored with the run, kept as
 * it always was so that a run recorded before resumes with its facts.
 */
import { CellopsError } from '../errors.js';
import type { StepContext } from './types.js';

const SHARED_FACTS = {
  /** When the preflight first ran: the start of the time to recover. */
  startedAt: 'startedAt',
  /** The failed CN's node address, derived from the backup key. */
  failedAddress: 'failedAddress',
  /** The failed CN's node ID (public: it is in the PNs' static-nodes.json). */
  failedNodeId: 'failedNodeId',
  /** Set by Verify when every check passed, so that a Verify interrupted midway runs again in full. */
  verifiedAt: 'verifiedAt',
  timeToRecoverMs: 'timeToRecoverMs',
  /** When Verify first saw the CN's address among the committers (epoch ms): the end of the outage. */
  signedAt: 'signedAt',
  /** The oldest block of that look with the CN's seal: where the report stops counting missed blocks. */
  signedBlock: 'signedBlock',
} as const;

/** Records when and in which block the CN was first seen signing again (the report's end of the outage). */
export function recordSigning(
  ctx: StepContext<unknown>,
  blocks: readonly { readonly number: number; readonly committers: readonly string[] }[],
  signs: (committer: string) => boolean,
): void {
  const first = blocks.find((b) => b.committers.some(signs));
  if (first === undefined || ctx.fact(SHARED_FACTS.signedAt) !== undefined) return;
  ctx.setFact(SHARED_FACTS.signedAt, ctx.ports.clock.now());
  ctx.setFact(SHARED_FACTS.signedBlock, first.number);
}

/** Facts of the standby mode (failover-standby.ts). */
export const STANDBY_FACTS = {
  ...SHARED_FACTS,
  /** sha256 of the backup file. */
  backupChecksum: 'backupChecksum',
  /** The standby's own address before the swap. */
  standbyAddress: 'standbyAddress',
  /** 'done' when kcnd was stopped and the key moved aside over SSH; 'unreachable' when SSH failed. */
  fenceSsh: 'fenceSsh',
  fenceSshError: 'fenceSshError',
  /** 'stopped' when the EC2 instance was stopped, 'failed' when stopping it failed, absent otherwise. */
  fenceEc2: 'fenceEc2',
  fenceConfirmed: 'fenceConfirmed',
  /** The instance the Elastic IP was on before the run (null: none). */
  ipPreviousInstance: 'ipPreviousInstance',
  ipMoveConfirmed: 'ipMoveConfirmed',
  blsSource: 'blsSource',
} as const;

/** Facts of the snapshot mode (failover-snapshot.ts). */
export const SNAPSHOT_FACTS = {
  ...SHARED_FACTS,
  /** sha256 of the backup file. */
  backupChecksum: 'nodekeyChecksum',
  /** The instance the Elastic IP was on before the run, when another than the replacement. */
  ipPreviousInstance: 'eipPreviousInstance',
  /** The machine serving the CN when the run started: its instance and address. */
  failedInstanceId: 'failedInstanceId',
  failedHost: 'failedHost',
  /** The SSH host keys pinned for it when it is a replacement launched by an earlier failover. */
  failedHostKeys: 'failedHostKeys',
  imageId: 'imageId',
  /** The PN whose data volume is snapshotted. */
  pn: 'pn',
  pnVolumeId: 'pnVolumeId',
  pnStoppedAt: 'pnStoppedAt',
  snapshotId: 'snapshotId',
  /** The replacement instance, where it is reached, and its data volume. */
  instanceId: 'instanceId',
  privateIp: 'privateIp',
  availabilityZone: 'availabilityZone',
  volumeId: 'volumeId',
  /** The replacement's SSH host keys pinned from its console (`<type> <base64>`: public, not secrets). */
  hostKeys: 'replacementHostKeys',
  /** Where the replacement's host key is known from: 'console' (pinned) or 'known_hosts'. */
  hostKeySource: 'replacementHostKeySource',
} as const;

/** A fact an earlier step must have recorded; its absence means the run cannot go on from here. */
export function requireFact<T extends string | number>(ctx: StepContext<unknown>, key: string): T {
  const value = ctx.fact<T>(key);
  if (value === undefined)
    throw new CellopsError(
      'missing_fact',
      `run ${ctx.runId} has no recorded ${key}; run the preflight again`,
    );
  return value;
}
