/**
 * The EC2 adapter (createEc2Cloud) over an EC2Client mocked by aws-sdk-client-mock, for the adapter's own
 * tests and the runbooks' tests against it: one client with test credentials, its mock, and the adapter
 * with waiters that poll every 10–20 ms instead of the SDK's 15 s.
 */
import { EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { createEc2Cloud } from '../../src/adapters/ec2/ec2-cloud.js';
import { createSystemClock } from '../../src/infra/system-clock.js';
import type { Cloud } from '../../src/ports/cloud.js';
import type { Logger } from '../../src/ports/logger.js';
import { RecordingLogger } from '../fakes/recording-logger.js';

export const TEST_REGION = 'ap-northeast-2';

/** Fast polling so the waiters take milliseconds, not the SDK's 15 s. */
export const FAST_WAITERS = { minSeconds: 0.01, maxSeconds: 0.02 };

export interface MockedEc2 {
  readonly client: EC2Client;
  /** Set up the answers with `ec2.on(Command)`. */
  readonly ec2: AwsClientStub<EC2Client>;
  /** The adapter under test, on `client`. */
  readonly cloud: Cloud;
  /** The inputs the adapter sent with one command class, in order. */
  inputs<C extends new (...args: never[]) => { input: unknown }>(
    command: C,
  ): NonNullable<InstanceType<C>['input']>[];
  /** Undoes the mock and closes the client (afterEach). */
  restore(): void;
}

export function mockEc2(options: { readonly logger?: Logger } = {}): MockedEc2 {
  const client = new EC2Client({
    region: TEST_REGION,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' },
  });
  const ec2 = mockClient(client);
  const cloud = createEc2Cloud({
    client,
    region: TEST_REGION,
    clock: createSystemClock(),
    logger: options.logger ?? new RecordingLogger(),
    waiterDelays: FAST_WAITERS,
  });
  return {
    client,
    ec2,
    cloud,
    inputs: <C extends new (...args: never[]) => { input: unknown }>(command: C) =>
      ec2
        .commandCalls(command as never)
        .map((call) => (call.args[0] as { input: NonNullable<InstanceType<C>['input']> }).input),
    restore: () => {
      ec2.restore();
      client.destroy();
    },
  };
}

/** An error as the SDK throws it for an EC2 error code (400, client fault). */
export function awsError(name: string, message = name): EC2ServiceException {
  return new EC2ServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}
