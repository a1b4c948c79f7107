/**
 * The console part of the Cloud port over EC2: GetConsoleOutput with `Latest: true`, its base64 decoded.
 * IAM: ec2:GetConsoleOutput on the instance. EC2 answers with no `Output` at all until the instance has
 * printed something (a minute or more after boot), which is empty text here, not an error.
 */
import { GetConsoleOutputCommand, type GetConsoleOutputCommandOutput } from '@aws-sdk/client-ec2';
import type { Cloud } from '../../ports/cloud.js';
import type { Ec2Context } from './ec2-context.js';
import { isEc2NotFound, translateEc2Error } from './ec2-errors.js';

export type ConsoleOps = Pick<Cloud, 'consoleOutput'>;

export function createConsoleOps(ctx: Ec2Context): ConsoleOps {
  return {
    consoleOutput: async (instanceId, options = {}) => {
      let out: GetConsoleOutputCommandOutput;
      try {
        out = await ctx.client.send(
          new GetConsoleOutputCommand({
            InstanceId: instanceId,
            ...(options.latest === true ? { Latest: true } : {}),
          }),
        );
      } catch (error) {
        if (isEc2NotFound(error)) return undefined;
        throw translateEc2Error(error, {
          action: 'GetConsoleOutput',
          resource: `the console of instance ${instanceId}`,
          region: await ctx.region(),
        });
      }
      return {
        text: out.Output === undefined ? '' : Buffer.from(out.Output, 'base64').toString('utf8'),
        ...(out.Timestamp === undefined ? {} : { updatedAt: out.Timestamp.getTime() }),
      };
    },
  };
}
