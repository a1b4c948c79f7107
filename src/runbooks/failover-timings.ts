/**
 * Bounds of every wait of the two failover modes, in milliseconds. A bound both modes have has one name in
 * both. Defaults suit mainnet; tests and the sandbox pass shorter ones.
 */

export interface StandbyFailoverTimings {
  /** Preflight: the longest wait between two height samples that tell a stalled active from a slow probe. Default 5 s. */
  readonly stallSampleMs: number;
  /** Fencing: StopInstances of the failed CN until `stopped`. Default 5 min. */
  readonly instanceStoppedMs: number;
  /** Verify: the standby loads its key, finds CN peers, catches up and signs. Default 5 min. */
  readonly catchUpMs: number;
}

export const DEFAULT_STANDBY_TIMINGS: StandbyFailoverTimings = {
  stallSampleMs: 5_000,
  instanceStoppedMs: 5 * 60_000,
  catchUpMs: 5 * 60_000,
};

export interface SnapshotFailoverTimings {
  /** Stopping kpnd (its init script waits up to STOP_TIMEOUT, then kills). Default 5 min. */
  readonly serviceStopMs: number;
  /** RunInstances until `running`. Default 10 min. */
  readonly instanceRunningMs: number;
  /** `running` until SSH answers at the private IP. Default 10 min. */
  readonly sshReadyMs: number;
  /** `running` until cloud-init's host key block is on the console (EC2 takes a minute or more). Default 10 min. */
  readonly consoleKeyMs: number;
  /** CreateSnapshot until `completed`: a first snapshot of a large volume takes hours. Default 6 h. */
  readonly snapshotCompletedMs: number;
  /** CreateVolume until `available`, AttachVolume until `in-use`, each. Default 10 min. */
  readonly volumeMs: number;
  /** StopInstances until `stopped`; after this a forced stop gets the same again. Default 5 min. */
  readonly instanceStoppedMs: number;
  /** Deleting everything but chaindata on the restored volume. Default 30 min. */
  readonly cleanMs: number;
  /** After kcnd starts: the right address, CN peers and the PNs' height. Lazily loaded EBS is slow. Default 60 min. */
  readonly catchUpMs: number;
  /** Between two polls of a wait we run ourselves. Default 5 s. */
  readonly pollMs: number;
  /** One probe of a node's metrics or RPC. Default 5 s. */
  readonly probeMs: number;
  /** One SSH command. Default 2 min. */
  readonly commandMs: number;
  /** Best-effort SSH fencing of the failed CN, per command. Default 15 s. */
  readonly fenceSshMs: number;
}

export const DEFAULT_SNAPSHOT_TIMINGS: SnapshotFailoverTimings = {
  serviceStopMs: 5 * 60_000,
  instanceRunningMs: 10 * 60_000,
  sshReadyMs: 10 * 60_000,
  consoleKeyMs: 10 * 60_000,
  snapshotCompletedMs: 6 * 60 * 60_000,
  volumeMs: 10 * 60_000,
  instanceStoppedMs: 5 * 60_000,
  cleanMs: 30 * 60_000,
  catchUpMs: 60 * 60_000,
  pollMs: 5_000,
  probeMs: 5_000,
  commandMs: 2 * 60_000,
  fenceSshMs: 15_000,
};

/** What a caller may change of a failover's steps: some of its timings. */
export interface FailoverOptions<T> {
  readonly timings?: Partial<T>;
}
