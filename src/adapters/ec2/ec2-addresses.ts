/** The Elastic IP part of the Cloud port over EC2. */
import { AssociateAddressCommand } from '@aws-sdk/client-ec2';
import type { Cloud } from '../../ports/cloud.js';
import { call, type Ec2Context } from './ec2-context.js';
import { ADDRESSES, describeOne } from './ec2-resources.js';

export type AddressOps = Pick<Cloud, 'associateAddress' | 'describeAddress'>;

export function createAddressOps(ctx: Ec2Context): AddressOps {
  const { client, log } = ctx;
  return {
    associateAddress: async (allocationId, instanceId) => {
      log.info({ allocationId, instanceId }, 'moving Elastic IP');
      const out = await call(
        ctx,
        'AssociateAddress',
        `Elastic IP ${allocationId} (to instance ${instanceId})`,
        () =>
          client.send(
            new AssociateAddressCommand({
              AllocationId: allocationId,
              InstanceId: instanceId,
              // The address is still on the failed CN: taking it from there is the point.
              AllowReassociation: true,
            }),
          ),
      );
      return out.AssociationId !== undefined ? { associationId: out.AssociationId } : {};
    },

    describeAddress: (allocationId) =>
      describeOne(ctx, ADDRESSES, allocationId, (out) => {
        const address = out.Addresses?.find((a) => a.AllocationId === allocationId);
        if (!address) return undefined;
        return {
          ...(address.PublicIp !== undefined ? { publicIp: address.PublicIp } : {}),
          ...(address.InstanceId !== undefined ? { instanceId: address.InstanceId } : {}),
        };
      }),
  };
}
