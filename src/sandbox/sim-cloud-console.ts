/**
 * The simulated EC2's serial console: an instance the sim launched prints boot noise, then, `consoleKeys`
 * after it is running, cloud-init's SSH host key block with the instance's own (fresh) host key, as a
 * stock image does on first boot. Seeded instances have been up for long: their buffer has no block.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Cloud } from '../ports/cloud.js';
import type { InstanceRec, SimCloudState } from './sim-cloud-state.js';

/** A fresh ed25519 host public key, `ssh-ed25519 <base64 wire blob>`. */
export function newHostKey(): string {
  const spki = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const raw = spki.subarray(spki.length - 32);
  const name = Buffer.from('ssh-ed25519');
  const blob = Buffer.alloc(4 + name.length + 4 + raw.length);
  blob.writeUInt32BE(name.length, 0);
  name.copy(blob, 4);
  blob.writeUInt32BE(raw.length, 4 + name.length);
  raw.copy(blob, 8 + name.length);
  return `ssh-ed25519 ${blob.toString('base64')}`;
}

/** What cloud-init prints (the real layout: fingerprints logged with a tag, keys plain), CRLF included. */
export function cloudInitConsole(
  instance: Pick<InstanceRec, 'instanceId' | 'privateIp'>,
  hostKeys: readonly string[],
  withKeys: boolean,
): string {
  const host = `ip-${(instance.privateIp ?? '10.0.0.1').replaceAll('.', '-')}`;
  const boot = [
    '[    0.000000] Linux version 6.1.0-aws (builder@sim) #1 SMP',
    '[    2.481516] EXT4-fs (nvme0n1p1): mounted filesystem with ordered data mode.',
    `[   11.204077] cloud-init[512]: Cloud-init v. 23.4 running 'init' at ${instance.instanceId}.`,
  ];
  if (!withKeys) return boot.join('\r\n') + '\r\n';
  return [
    ...boot,
    '<14>Dec  2 12:00:01 ec2: #############################################################',
    '<14>Dec  2 12:00:01 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
    '<14>Dec  2 12:00:01 ec2: -----END SSH HOST KEY FINGERPRINTS-----',
    '-----BEGIN SSH HOST KEY KEYS-----',
    ...hostKeys.map((k) => `${k} root@${host}`),
    '-----END SSH HOST KEY KEYS-----',
    `[   38.911010] cloud-init[987]: Cloud-init v. 23.4 finished. Up 38.90 seconds`,
    '',
  ].join('\r\n');
}

export function createSimCloudConsole(state: SimCloudState): Pick<Cloud, 'consoleOutput'> {
  return {
    consoleOutput: async (instanceId, options = {}) => {
      state.enter('consoleOutput', [instanceId, options]);
      const rec = state.instances.get(instanceId);
      if (!rec) return undefined;
      if (state.current(rec.status) !== 'running' || rec.bootAt === undefined) return { text: '' };
      const printed = state.clock.now() >= rec.bootAt + state.delays.consoleKeys;
      return { text: cloudInitConsole(rec, rec.hostKeys ?? [], printed && rec.hostKeys !== undefined) };
    },
  };
}
