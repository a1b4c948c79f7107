/**
 * The shapes of the cell state records (redis-cell-state.ts) as cellops writes them today, checked on
 * every read: a role's instance and address reach EC2 and SSH in a failover, so a record that is not
 * what cellops wrote is moved aside rather than followed.
 */
import { z } from 'zod';
import { SHAPES, shaped } from '../ports/cloud-shapes.js';
import { parseHostPublicKey } from '../ports/host-key.js';
import type { FencedMachine, ImageRecord, NodekeyBackupRecord } from '../ports/cell-state.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a node name');
const epochMs = z.number().int().nonnegative();
const runId = z.string().min(1).max(64);

/**
 * Pinned SSH host keys, each `<type> <base64>` with no comment and a blob that decodes to its type: the
 * SSH adapter trusts exactly these for the machine, so nothing else may pass.
 */
const hostKeys = z
  .array(
    z
      .string()
      .max(4096)
      .refine((k) => {
        const key = parseHostPublicKey(k);
        return typeof key !== 'string' && key.line === k;
      }, 'must be a host key "<type> <base64>"'),
  )
  .min(1)
  .max(16);

const fencedSchema: z.ZodType<FencedMachine> = z.looseObject({
  name,
  address: shaped(SHAPES.ipAddress),
  instanceId: shaped(SHAPES.instanceId).optional(),
  hostKeys: hostKeys.optional(),
  nodeAddress: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be a node address'),
});

/**
 * A CN's roles as stored: today's shape (CnRoles, with history fields) or the older RoleAssignment
 * (`role` instead of `cn`, no former servers). Every machine name, address and instance id is checked:
 * these reach SSH, EC2 and the next failover.
 */
export const storedRolesSchema = z.looseObject({
  cn: name.optional(),
  role: name.optional(),
  servedBy: name,
  address: shaped(SHAPES.ipAddress).optional(),
  instanceId: shaped(SHAPES.instanceId).optional(),
  hostKeys: hostKeys.optional(),
  standby: name.optional(),
  formerServers: z.array(name).max(64).optional(),
  since: epochMs,
  runId,
  by: z.string().max(64).optional(),
  reason: z.string().max(500).optional(),
  version: z.number().int().nonnegative().optional(),
  fenced: fencedSchema.optional(),
});
export type StoredRoles = z.infer<typeof storedRolesSchema>;

export const nodekeyBackupSchema: z.ZodType<NodekeyBackupRecord> = z.looseObject({
  cn: name,
  host: z.string().min(1).max(255),
  path: z.string().regex(/^\/[^\0\n\r]*$/, 'must be an absolute path on one line'),
  checksum: z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex'),
  nodeAddress: z.string().max(100),
  nodeId: z.string().max(200),
  at: epochMs,
  runId,
});

export const imageRecordSchema: z.ZodType<ImageRecord> = z.looseObject({
  cn: name,
  imageId: shaped(SHAPES.imageId),
  at: epochMs,
  runId,
  binarySha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex')
    .optional(),
  confSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex')
    .optional(),
});
