/**
 * The network half of the Cloud port over EC2: an instance's primary interface and moving a secondary
 * private IP between interfaces (the failed CN's address that the PNs' static-nodes.json dial).
 */
import { AssignPrivateIpAddressesCommand, UnassignPrivateIpAddressesCommand } from '@aws-sdk/client-ec2';
import type { Cloud, NetworkInfo } from '../../ports/cloud.js';
import { call, type Ec2Context } from './ec2-context.js';
import { INSTANCES, describeOne } from './ec2-resources.js';

export type NetworkOps = Pick<Cloud, 'describeNetwork' | 'assignPrivateIp' | 'unassignPrivateIp'>;

export function createNetworkOps(ctx: Ec2Context): NetworkOps {
  const { client, log } = ctx;
  return {
    describeNetwork: (instanceId) =>
      describeOne(ctx, INSTANCES, instanceId, (out): NetworkInfo | undefined => {
        const instance = out.Reservations?.flatMap((r) => r.Instances ?? []).find(
          (i) => i.InstanceId === instanceId,
        );
        const eni = instance?.NetworkInterfaces?.find((n) => n.Attachment?.DeviceIndex === 0);
        if (!eni?.NetworkInterfaceId) return undefined;
        return {
          networkInterfaceId: eni.NetworkInterfaceId,
          privateIps: (eni.PrivateIpAddresses ?? []).flatMap((a) =>
            a.PrivateIpAddress === undefined
              ? []
              : [{ address: a.PrivateIpAddress, primary: a.Primary === true }],
          ),
        };
      }),

    assignPrivateIp: async (networkInterfaceId, address) => {
      log.info({ networkInterfaceId, address }, 'assigning private IP');
      await call(ctx, 'AssignPrivateIpAddresses', `interface ${networkInterfaceId} (${address})`, () =>
        client.send(
          new AssignPrivateIpAddressesCommand({
            NetworkInterfaceId: networkInterfaceId,
            PrivateIpAddresses: [address],
            // The address may still sit on the failed CN's interface: taking it is the point.
            AllowReassignment: true,
          }),
        ),
      );
    },

    unassignPrivateIp: async (networkInterfaceId, address) => {
      log.info({ networkInterfaceId, address }, 'unassigning private IP');
      await call(ctx, 'UnassignPrivateIpAddresses', `interface ${networkInterfaceId} (${address})`, () =>
        client.send(
          new UnassignPrivateIpAddressesCommand({
            NetworkInterfaceId: networkInterfaceId,
            PrivateIpAddresses: [address],
          }),
        ),
      );
    },
  };
}
