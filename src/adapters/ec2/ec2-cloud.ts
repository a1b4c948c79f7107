/**
 * The Cloud port over @aws-sdk/client-ec2.
 *
 * - Region: `deps.region` (the configuration's aws.region) or the SDK's chain (AWS_REGION, profile).
 * - Credentials: the SDK's standard chain (env, SSO/profile, web identity, instance role).
 * - Endpoint: the SDK itself honours AWS_ENDPOINT_URL_EC2 (and AWS_ENDPOINT_URL), read per request;
 *   tests point it at a loopback server.
 * - Every create call carries its tags in TagSpecifications, so the resource is tagged from its first
 *   instant, and a create without the `cellops:run-id` tag is refused before any call is made.
 * - Waits use the SDK's waiters, bounded by `timeoutMs` and the caller's abort signal (ec2-wait.ts).
 *
 * The operations live in one module per kind of resource (ec2-instances.ts, ec2-storage.ts, ec2-images.ts,
 * ec2-addresses.ts, ec2-console.ts, ec2-network.ts, ec2-tagged.ts), each taking the shared context of ec2-context.ts.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import type { Clock } from '../../ports/clock.js';
import { RUN_ID_TAG, type Cloud } from '../../ports/cloud.js';
import type { Logger } from '../../ports/logger.js';
import { createAddressOps } from './ec2-addresses.js';
import { createConsoleOps } from './ec2-console.js';
import { createEc2Context, type WaiterDelays } from './ec2-context.js';
import { createImageOps } from './ec2-images.js';
import { createInstanceOps } from './ec2-instances.js';
import { createNetworkOps } from './ec2-network.js';
import { createStorageOps } from './ec2-storage.js';
import { findTagged } from './ec2-tagged.js';

export interface Ec2CloudDeps {
  /** A ready client (tests pass a mocked one). Default: a new EC2Client for `region`. */
  readonly client?: EC2Client;
  /** aws.region from the configuration; undefined leaves it to the SDK's chain (AWS_REGION). */
  readonly region?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Tag key that carries the run id. Default `cellops:run-id` (RUN_ID_TAG). */
  readonly runTag?: string;
  /**
   * Waiter polling, in seconds. The SDK's defaults (15 s, backing off to 120 s) suit batch jobs; a
   * failover wants to notice a running instance within seconds. Default min 5, max 15.
   */
  readonly waiterDelays?: WaiterDelays;
}

export function createEc2Cloud(deps: Ec2CloudDeps): Cloud {
  const ctx = createEc2Context({
    client: deps.client ?? new EC2Client(deps.region !== undefined ? { region: deps.region } : {}),
    configuredRegion: deps.region,
    runTag: deps.runTag ?? RUN_ID_TAG,
    delays: deps.waiterDelays ?? { minSeconds: 5, maxSeconds: 15 },
    clock: deps.clock,
    log: deps.logger.child({ component: 'ec2' }),
  });
  return {
    ...createInstanceOps(ctx),
    ...createStorageOps(ctx),
    ...createAddressOps(ctx),
    ...createNetworkOps(ctx),
    ...createImageOps(ctx),
    ...createConsoleOps(ctx),
    findTagged: (runId) => findTagged(ctx, runId),
  };
}
