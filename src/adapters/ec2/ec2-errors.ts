/**
 * Turns AWS SDK failures into ExternalErrors an operator can act on: which call, on which resource, in
 * which region, and what to check. The SDK's own messages (an encoded authorization blob, "Region is
 * missing") name neither the resource nor the fix.
 */
import { ExternalError } from '../../errors.js';
import { redactThenTruncate } from '../../infra/redact.js';

export interface Ec2CallContext {
  /** EC2 API action, e.g. `StopInstances`; the IAM action is `ec2:<action>`. */
  readonly action: string;
  /** What the call was about, e.g. `instance i-0123` or `Elastic IP eipalloc-0123`. */
  readonly resource: string;
  /** Region the client resolved, or a placeholder when it could not. */
  readonly region: string;
}

interface SdkErrorShape {
  readonly name?: string;
  readonly message?: string;
  readonly code?: string;
  readonly $fault?: 'client' | 'server';
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function shape(error: unknown): SdkErrorShape {
  return typeof error === 'object' && error !== null ? error : {};
}

/** The AWS error code (`InvalidInstanceID.NotFound`), or the JS error name for client-side failures. */
export function ec2ErrorCode(error: unknown): string {
  const e = shape(error);
  return e.name ?? e.code ?? 'Error';
}

export function isEc2NotFound(error: unknown): boolean {
  return /\.NotFound$|^InvalidAMIID\.Unavailable$/.test(ec2ErrorCode(error));
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);

/** Only the first line of the SDK's message, bounded: some carry multi-kilobyte encoded blobs. */
function brief(message: string | undefined): string {
  const first = (message ?? '').split('\n')[0] ?? '';
  return redactThenTruncate(first, 201);
}

function endpointHint(): string {
  const endpoint = process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL;
  return endpoint === undefined
    ? 'check the network path to the EC2 API (proxy, VPC endpoint, security groups)'
    : `check that the endpoint set in AWS_ENDPOINT_URL_EC2/AWS_ENDPOINT_URL (${endpoint}) is reachable`;
}

export function translateEc2Error(error: unknown, ctx: Ec2CallContext): ExternalError {
  if (error instanceof ExternalError) return error;
  const e = shape(error);
  const code = ec2ErrorCode(error);
  const where = `${ctx.action} on ${ctx.resource} in ${ctx.region}`;
  const detail = brief(e.message);

  if (code === 'UnauthorizedOperation' || code === 'AccessDenied' || code === 'AccessDeniedException') {
    return new ExternalError(
      'ec2_unauthorized',
      `EC2 refused ${where}: the credentials cellops runs with are not allowed ec2:${ctx.action}. ` +
        `Grant ec2:${ctx.action} to its IAM role or user (and check SCPs and permission boundaries).`,
      { cause: error },
    );
  }
  if (code === 'AuthFailure' || code === 'InvalidClientTokenId' || code === 'SignatureDoesNotMatch') {
    return new ExternalError(
      'ec2_auth_failed',
      `EC2 did not accept the credentials for ${where} (${code}): check AWS_PROFILE, AWS_ACCESS_KEY_ID or the ` +
        `instance role, and that the host clock is correct.`,
      { cause: error },
    );
  }
  if (code === 'ExpiredToken' || code === 'RequestExpired' || code === 'ExpiredTokenException') {
    return new ExternalError(
      'ec2_auth_failed',
      `The AWS session token expired during ${where}: refresh the credentials (SSO login, role session) or ` +
        `check the host clock.`,
      { cause: error, retryable: true },
    );
  }
  if (code === 'CredentialsProviderError') {
    return new ExternalError(
      'aws_credentials_missing',
      `No AWS credentials were found for ${where}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ` +
        `or give the host an instance role. (${detail})`,
      { cause: error },
    );
  }
  if (/region is missing/i.test(e.message ?? '')) {
    return new ExternalError(
      'aws_region_missing',
      `No AWS region is configured for ${ctx.action} on ${ctx.resource}: set aws.region in the configuration ` +
        `file or AWS_REGION in the environment.`,
      { cause: error },
    );
  }
  if (isEc2NotFound(error)) {
    return new ExternalError(
      'ec2_not_found',
      `EC2 says ${ctx.resource} does not exist in ${ctx.region} (${code} during ${ctx.action}): check the id in ` +
        `the configuration and that aws.region is the region it lives in.`,
      { cause: error },
    );
  }
  if (
    code.endsWith('.Malformed') ||
    code === 'InvalidParameterValue' ||
    code === 'InvalidParameterCombination'
  ) {
    return new ExternalError(
      'ec2_bad_request',
      `EC2 rejected the parameters of ${where} (${code}: ${detail}): check the configured ids and values.`,
      { cause: error },
    );
  }
  if (code === 'IncorrectInstanceState' || code === 'IncorrectState' || code === 'VolumeInUse') {
    return new ExternalError(
      'ec2_incorrect_state',
      `EC2 refused ${where} because of the resource's current state (${code}: ${detail}).`,
      { cause: error },
    );
  }
  if (code === 'InsufficientInstanceCapacity' || code === 'InsufficientCapacity') {
    return new ExternalError(
      'ec2_no_capacity',
      `EC2 has no capacity for ${where} right now: retry, or choose another instance type or a subnet in ` +
        `another availability zone.`,
      { cause: error, retryable: true },
    );
  }
  if (
    code === 'RequestLimitExceeded' ||
    code === 'Throttling' ||
    code === 'ThrottlingException' ||
    code === 'SnapshotCreationPerVolumeRateExceeded'
  ) {
    return new ExternalError('ec2_throttled', `EC2 throttled ${where} (${code}); retry shortly.`, {
      cause: error,
      retryable: true,
    });
  }
  if (NETWORK_CODES.has(code) || NETWORK_CODES.has(e.code ?? '')) {
    return new ExternalError(
      'ec2_unreachable',
      `The EC2 API could not be reached for ${where} (${code}): ${endpointHint()}.`,
      { cause: error, retryable: true },
    );
  }
  if (e.$fault === 'server' || (e.$metadata?.httpStatusCode ?? 0) >= 500) {
    return new ExternalError(
      'ec2_server_error',
      `EC2 failed on its side during ${where} (${code}: ${detail}); retry.`,
      { cause: error, retryable: true },
    );
  }
  return new ExternalError('ec2_error', `EC2 call ${where} failed (${code}: ${detail}).`, { cause: error });
}
