/**
 * The shapes of the monitor's records in Redis (incidents.ts), checked on every read: an incident, a
 * mute and the leader's view of the cell. A record that is not what cellops writes is moved aside, so
 * `/cell status` and the alert threads go on for everyone.
 */
import { z } from 'zod';
import { NODE_CONDITIONS, type CellView } from './types.js';
import { INCIDENT_KINDS, type IncidentRecord, type MuteRecord } from './incident-record.js';

const epochMs = z.number().int().nonnegative();
const count = z.number().int();

const messageRef = z.looseObject({ channel: z.string().min(1), ts: z.string().min(1) });

export const incidentRecordSchema: z.ZodType<IncidentRecord> = z.looseObject({
  id: z.string().min(1).max(100),
  subject: z.string().min(1).max(100),
  node: z.string().min(1).max(100),
  servedBy: z.string().max(100).optional(),
  kind: z.enum(INCIDENT_KINDS),
  openedAt: epochMs,
  createdAt: epochMs,
  message: messageRef.optional(),
  height: count.optional(),
  lag: count.optional(),
  referenceHeight: count.optional(),
  reportedLag: count.optional(),
  detail: z.string().optional(),
  acknowledgedBy: z.string().optional(),
  acknowledgedAt: epochMs.optional(),
  lastPostAt: epochMs.optional(),
  pending: z.record(z.string(), z.string()),
  parentStale: z.boolean().optional(),
  version: z.number().int().nonnegative(),
});

export const muteRecordSchema: z.ZodType<MuteRecord> = z.looseObject({
  until: epochMs,
  by: z.string().min(1).max(200),
  at: epochMs,
});

const nodeView = z.looseObject({
  node: z.string().min(1),
  role: z.enum(['cn', 'standby', 'pn']),
  servedBy: z.string().optional(),
  height: count.optional(),
  lag: count.optional(),
  cnPeers: count.optional(),
  condition: z.enum(NODE_CONDITIONS),
  since: epochMs.optional(),
  lastProbeAt: epochMs.optional(),
  lastError: z.string().optional(),
  mutedUntil: epochMs.optional(),
});

export const cellViewSchema: z.ZodType<CellView> = z.looseObject({
  referenceHeight: count.optional(),
  nodes: z.array(nodeView),
  at: epochMs,
});
