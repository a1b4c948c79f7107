/**
 * The EC2 calls cellops makes, and nothing more. Real adapter: src/adapters/ec2 (@aws-sdk/client-ec2);
 * the sandbox has a simulated EC2; unit tests use test/fakes/fake-cloud.ts.
 *
 * Every create call takes `tags`; the adapter adds them to the resource at creation (TagSpecifications) so
 * that a run that fails midway can list what it left behind (`findTagged`).
 */
export type Tags = Readonly<Record<string, string>>;

/**
 * The tag every resource a run creates carries, valued with the run id. Adapters refuse a create call whose
 * tags lack it, so `findTagged` can always list what a failed run left behind.
 */
export const RUN_ID_TAG = 'cellops:run-id';

export interface WaitOptions {
  /** Give up (reject with a retryable timeout error) after this many milliseconds. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export type InstanceState = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

export interface InstanceInfo {
  readonly instanceId: string;
  readonly state: InstanceState;
  readonly availabilityZone: string;
  readonly privateIp?: string;
  readonly publicIp?: string;
  readonly imageId?: string;
  readonly tags: Tags;
}

export interface LaunchSpec {
  readonly imageId: string;
  readonly instanceType: string;
  readonly subnetId: string;
  readonly securityGroupIds: readonly string[];
  readonly keyName?: string;
  readonly tags: Tags;
  /**
   * Idempotency token (EC2 ClientToken, up to 64 ASCII characters): a RunInstances retried with the same
   * token after a timeout or a crash returns the instance already launched instead of launching a second.
   * Runbooks pass something derived from the run id and the step id.
   */
  readonly clientToken?: string;
}

export interface ImageSpec {
  readonly instanceId: string;
  readonly name: string;
  readonly description: string;
  /** Device names left out of the image (BlockDeviceMappings with NoDevice), e.g. the DATA_DIR volume. */
  readonly excludeDevices: readonly string[];
  readonly tags: Tags;
  /**
   * Let EC2 reboot the instance for a file-system-consistent image. Default false (NoReboot): the image
   * is usually taken of a live CN, and a reboot would take a validator out of consensus.
   */
  readonly reboot?: boolean;
}

export interface ConsoleOutput {
  /** The console text, decoded from EC2's base64 (UTF-8, invalid bytes replaced). */
  readonly text: string;
  /** When EC2 last updated the output (epoch ms), when it says. */
  readonly updatedAt?: number;
}

export interface TaggedResource {
  readonly kind: 'instance' | 'volume' | 'snapshot' | 'image';
  readonly id: string;
  readonly state?: string;
}

/** An instance's primary network interface (device index 0) and the private IPv4 addresses on it. */
export interface NetworkInfo {
  readonly networkInterfaceId: string;
  readonly privateIps: ReadonlyArray<{ readonly address: string; readonly primary: boolean }>;
}

export interface Cloud {
  describeInstance(instanceId: string): Promise<InstanceInfo | undefined>;
  /** Device names of the volumes attached to the instance, keyed by volume id. */
  describeInstanceVolumes(instanceId: string): Promise<ReadonlyArray<{ volumeId: string; device: string }>>;
  stopInstance(instanceId: string, options?: { force?: boolean }): Promise<void>;
  waitInstanceStopped(instanceId: string, options: WaitOptions): Promise<void>;
  runInstance(spec: LaunchSpec): Promise<InstanceInfo>;
  waitInstanceRunning(instanceId: string, options: WaitOptions): Promise<InstanceInfo>;

  createSnapshot(volumeId: string, description: string, tags: Tags): Promise<{ snapshotId: string }>;
  describeSnapshot(snapshotId: string): Promise<{ state: string; progress?: string } | undefined>;
  waitSnapshotCompleted(snapshotId: string, options: WaitOptions): Promise<void>;

  createVolume(snapshotId: string, availabilityZone: string, tags: Tags): Promise<{ volumeId: string }>;
  waitVolumeAvailable(volumeId: string, options: WaitOptions): Promise<void>;
  attachVolume(volumeId: string, instanceId: string, device: string): Promise<void>;
  waitVolumeInUse(volumeId: string, options: WaitOptions): Promise<void>;

  /** Moves the Elastic IP to the instance, taking it from whichever instance holds it (AllowReassociation). */
  associateAddress(allocationId: string, instanceId: string): Promise<{ associationId?: string }>;
  describeAddress(allocationId: string): Promise<{ publicIp?: string; instanceId?: string } | undefined>;

  /** The instance's primary network interface, or undefined when the instance does not exist. */
  describeNetwork(instanceId: string): Promise<NetworkInfo | undefined>;
  /**
   * Puts a secondary private IP on the interface (AssignPrivateIpAddresses with AllowReassignment): the
   * failed CN's address that the PNs dial, moved to its replacement.
   */
  assignPrivateIp(networkInterfaceId: string, address: string): Promise<void>;
  /** Takes a secondary private IP off the interface (UnassignPrivateIpAddresses). */
  unassignPrivateIp(networkInterfaceId: string, address: string): Promise<void>;

  /**
   * Clean-up of what a run created (the `cleanup` runbook, which only passes resources tagged with the
   * run's id). Never used on the cell's own machines.
   */
  terminateInstance(instanceId: string): Promise<void>;
  waitInstanceTerminated(instanceId: string, options: WaitOptions): Promise<void>;
  deleteVolume(volumeId: string): Promise<void>;
  deleteSnapshot(snapshotId: string): Promise<void>;

  createImage(spec: ImageSpec): Promise<{ imageId: string }>;
  describeImage(
    imageId: string,
  ): Promise<{ state: string; creationDate?: string; name?: string } | undefined>;
  waitImageAvailable(imageId: string, options: WaitOptions): Promise<void>;

  /**
   * The instance's serial console output (EC2 GetConsoleOutput), decoded to text; `latest` asks for the most
   * recent output rather than the buffer kept at the last stop (`Latest: true`, Nitro instances). Empty
   * text, not an error, while the instance has printed nothing yet: EC2 has output a minute or more after
   * boot. Undefined when the instance does not exist.
   */
  consoleOutput(instanceId: string, options?: { latest?: boolean }): Promise<ConsoleOutput | undefined>;

  /** Resources tagged `cellops:run-id = runId`, for the report of a run that failed midway. */
  findTagged(runId: string): Promise<readonly TaggedResource[]>;
}

/** The instance calls of the port: what the EC2 adapter and the sandbox's EC2 both implement first. */
export type CloudInstanceCalls = Pick<
  Cloud,
  | 'describeInstance'
  | 'describeInstanceVolumes'
  | 'stopInstance'
  | 'waitInstanceStopped'
  | 'runInstance'
  | 'waitInstanceRunning'
>;

/** The EBS calls of the port: snapshots of volumes, volumes from snapshots, attachment. */
export type CloudStorageCalls = Pick<
  Cloud,
  | 'createSnapshot'
  | 'describeSnapshot'
  | 'waitSnapshotCompleted'
  | 'createVolume'
  | 'waitVolumeAvailable'
  | 'attachVolume'
  | 'waitVolumeInUse'
>;
