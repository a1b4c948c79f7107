/**
 * The shapes of the cell state records (redis-cell-state.ts) as cellops writes them today, checked on
 * every read: a role's instance and address reach EC2 and SSH in a failover, so a record that is not
 * what cellops wrote is moved aside rather than followed.
 */
import { z } from 'zod';
import { SHAPES, shaped } from '../ports/cloud-shapes.js';
import type { ImageRecord, NodekeyBackupRecord, RoleAssignment } from '../ports/cell-state.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a node name');
const epochMs = z.number().int().nonnegative();
const runId = z.string().min(1).max(64);

export const roleAssignmentSchema: z.ZodType<RoleAssignment> = z.looseObject({
  role: name,
  servedBy: name,
  address: shaped(SHAPES.ipAddress).optional(),
  instanceId: shaped(SHAPES.instanceId).optional(),
  since: epochMs,
  runId,
});

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
});
