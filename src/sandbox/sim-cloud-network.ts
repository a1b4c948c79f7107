/**
 * The simulated EC2's network interfaces (one primary interface per instance, `eni-` + the instance id's
 * suffix, carrying its private IP and any secondary ones) and the clean-up calls: terminating an
 * instance (its root volume goes with it, other volumes are detached), deleting volumes and snapshots.
 */
import type { Cloud } from '../ports/cloud.js';
import type { InstanceRec, SimCloudState } from './sim-cloud-state.js';

export type SimCloudNetwork = Pick<
  Cloud,
  | 'describeNetwork'
  | 'assignPrivateIp'
  | 'unassignPrivateIp'
  | 'terminateInstance'
  | 'waitInstanceTerminated'
  | 'deleteVolume'
  | 'deleteSnapshot'
>;

const eniOf = (instanceId: string): string => `eni-${instanceId.replace(/^i-/, '')}`;

export function createSimCloudNetwork(state: SimCloudState): SimCloudNetwork {
  const byEni = (networkInterfaceId: string): InstanceRec => {
    const rec = [...state.instances.values()].find((i) => eniOf(i.instanceId) === networkInterfaceId);
    if (!rec) throw state.notFound(`network interface ${networkInterfaceId}`);
    return rec;
  };
  return {
    describeNetwork: async (instanceId) => {
      state.enter('describeNetwork', [instanceId]);
      const rec = state.instances.get(instanceId);
      if (!rec) return undefined;
      return {
        networkInterfaceId: eniOf(instanceId),
        privateIps: [
          ...(rec.privateIp === undefined ? [] : [{ address: rec.privateIp, primary: true }]),
          ...(rec.secondaryIps ?? []).map((address) => ({ address, primary: false })),
        ],
      };
    },

    assignPrivateIp: async (networkInterfaceId, address) => {
      state.enter('assignPrivateIp', [networkInterfaceId, address]);
      const rec = byEni(networkInterfaceId);
      for (const other of state.instances.values()) {
        if (other === rec) continue;
        if (other.privateIp === address)
          throw state.incorrectState(`${address} is the primary private IP of ${other.instanceId}`);
        // AllowReassignment: the address leaves the interface that held it.
        if (other.secondaryIps) other.secondaryIps = other.secondaryIps.filter((ip) => ip !== address);
      }
      if (!(rec.secondaryIps ?? []).includes(address))
        rec.secondaryIps = [...(rec.secondaryIps ?? []), address];
    },

    unassignPrivateIp: async (networkInterfaceId, address) => {
      state.enter('unassignPrivateIp', [networkInterfaceId, address]);
      const rec = byEni(networkInterfaceId);
      if (!(rec.secondaryIps ?? []).includes(address))
        throw state.incorrectState(`${address} is not a secondary private IP of ${networkInterfaceId}`);
      rec.secondaryIps = (rec.secondaryIps ?? []).filter((ip) => ip !== address);
    },

    terminateInstance: async (instanceId) => {
      state.enter('terminateInstance', [instanceId]);
      const rec = state.getInstance(instanceId);
      const now = state.current(rec.status);
      if (now === 'terminated' || now === 'shutting-down') return;
      rec.status = {
        state: 'shutting-down',
        next: { state: 'terminated', at: state.clock.now() + state.delays.instanceStop },
      };
      for (const [device, volumeId] of rec.devices) {
        const volume = state.volumes.get(volumeId);
        // The root volume is deleted on termination; the others are detached and stay.
        if (device === '/dev/xvda') state.volumes.delete(volumeId);
        else if (volume) {
          volume.status = { state: 'available' };
          delete volume.attachment;
        }
      }
      rec.devices.clear();
      delete rec.secondaryIps;
      for (const address of state.addresses.values())
        if (address.instanceId === instanceId) delete address.instanceId;
    },

    waitInstanceTerminated: async (instanceId, wait) => {
      state.enter('waitInstanceTerminated', [instanceId, { timeoutMs: wait.timeoutMs }]);
      const rec = state.getInstance(instanceId);
      await state.waitFor(
        `instance ${instanceId}`,
        'terminated',
        wait,
        () => state.current(rec.status) === 'terminated',
      );
    },

    deleteVolume: async (volumeId) => {
      state.enter('deleteVolume', [volumeId]);
      const volume = state.volumes.get(volumeId);
      if (!volume) throw state.notFound(`volume ${volumeId}`);
      const now = state.current(volume.status);
      if (now !== 'available') throw state.incorrectState(`volume ${volumeId} is ${now}; detach it first`);
      state.volumes.delete(volumeId);
    },

    deleteSnapshot: async (snapshotId) => {
      state.enter('deleteSnapshot', [snapshotId]);
      if (!state.snapshots.delete(snapshotId)) throw state.notFound(`snapshot ${snapshotId}`);
    },
  };
}
