/**
 * The shapes of the identifiers that reach EC2 and SSH. A value read back from Redis (a run's facts, the
 * cell state) is checked against its shape before use, so a record someone rewrote cannot smuggle an
 * option, a path or another resource kind into a call. Pure: no I/O.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export interface IdShape {
  /** What it is, for messages: "an EC2 instance id". */
  readonly what: string;
  test(value: string): boolean;
}

/**
 * EC2 issues lower-case hex ids (8 or 17 digits); the configuration accepts lower-case letters and
 * digits, and an id configured there is recorded as a fact too, so the two agree on that alphabet. What
 * matters here: the right kind, and nothing a tool could read as an option, a path or a second word.
 */
const awsId = (prefix: string, what: string): IdShape => {
  const pattern = new RegExp(`^${prefix}-[0-9a-z]{1,32}$`);
  return { what: `${what} (${prefix}-…)`, test: (value) => pattern.test(value) };
};

export const SHAPES = {
  instanceId: awsId('i', 'an EC2 instance id'),
  volumeId: awsId('vol', 'an EBS volume id'),
  snapshotId: awsId('snap', 'an EBS snapshot id'),
  imageId: awsId('ami', 'an AMI id'),
  allocationId: awsId('eipalloc', 'an Elastic IP allocation id'),
  /** An IPv4 or IPv6 literal, no port, no brackets, no host name. */
  ipAddress: { what: 'an IP address', test: (value: string) => isIP(value) !== 0 },
  /** Where SSH connects: an IP literal, or a host name as the configuration accepts one. */
  host: {
    what: 'an IP address or host name',
    test: (value: string) => isIP(value) !== 0 || /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(value),
  },
  /** An availability zone such as us-east-1a (or a Local Zone's longer name). */
  availabilityZone: {
    what: 'an availability zone',
    test: (value: string) => /^[a-z][a-z0-9-]{1,62}[a-z0-9]$/.test(value),
  },
} as const satisfies Record<string, IdShape>;

export type ShapeName = keyof typeof SHAPES;

/** A zod string of the shape, for record schemas. */
export function shaped(shape: IdShape): z.ZodString {
  return z.string().refine((value) => shape.test(value), `must be ${shape.what}`);
}
