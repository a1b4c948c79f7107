/** The simulated EC2's Elastic IPs: associating one moves it off the instance that held it. */
import type { Cloud } from '../ports/cloud.js';
import type { SimCloudState } from './sim-cloud-state.js';

export type SimCloudAddresses = Pick<Cloud, 'associateAddress' | 'describeAddress'>;

export function createSimCloudAddresses(state: SimCloudState): SimCloudAddresses {
  return {
    associateAddress: async (allocationId, instanceId) => {
      state.enter('associateAddress', [allocationId, instanceId]);
      const address = state.addresses.get(allocationId);
      if (!address) throw state.notFound(`Elastic IP ${allocationId}`);
      const rec = state.getInstance(instanceId);
      if (address.instanceId && address.instanceId !== instanceId) {
        const previous = state.instances.get(address.instanceId);
        if (previous) delete previous.publicIp;
      }
      address.instanceId = instanceId;
      rec.publicIp = address.publicIp;
      return { associationId: `eipassoc-${allocationId.replace(/^eipalloc-/, '')}-${state.counter()}` };
    },

    describeAddress: async (allocationId) => {
      state.enter('describeAddress', [allocationId]);
      const address = state.addresses.get(allocationId);
      if (!address) return undefined;
      return {
        publicIp: address.publicIp,
        ...(address.instanceId !== undefined ? { instanceId: address.instanceId } : {}),
      };
    },
  };
}
