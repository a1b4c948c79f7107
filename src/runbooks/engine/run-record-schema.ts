/**
 * The shapes of what the run store keeps, checked on every read: a record in Redis is what cellops
 * wrote only if it parses. Objects are loose (unknown fields pass through) so that a record written by a
 * newer replica during a rolling upgrade still reads; what cellops relies on must be there and well typed.
 */
import { z } from 'zod';
import { RUN_STATUSES, STEP_STATUSES, type ApprovalRecord, type Fact, type RunRecord } from '../types.js';
import type { ControlRequest, RoundClosure } from './run-store.js';

const epochMs = z.number().int().nonnegative();
/** Slack user ids, and `engine:<owner>` for what the engine did on its own. */
const who = z.string().min(1).max(200);

export const approvalRecordSchema: z.ZodType<ApprovalRecord> = z.looseObject({
  user: who,
  decision: z.enum(['approve', 'abort']),
  at: epochMs,
});

export const roundClosureSchema: z.ZodType<RoundClosure> = z.looseObject({
  reason: z.string().max(2_000),
  at: epochMs,
});

export const controlRequestSchema: z.ZodType<ControlRequest> = z.looseObject({
  user: who,
  at: epochMs,
});

const factSchema: z.ZodType<Fact> = z.json();

const stepRecordSchema = z.looseObject({
  id: z.string().min(1),
  title: z.string(),
  description: z.string(),
  destructive: z.boolean(),
  kind: z.enum(['auto', 'manual']),
  status: z.enum(STEP_STATUSES),
  attempts: z.number().int().nonnegative(),
  startedAt: epochMs.optional(),
  endedAt: epochMs.optional(),
  output: z.array(z.string()),
  error: z.string().optional(),
  approvals: z.array(approvalRecordSchema),
  approvalExpiresAt: epochMs.optional(),
  approvalRound: z.number().int().nonnegative(),
  approvalsRequired: z.number().int().min(1).optional(),
});

const threadSchema = z.looseObject({ channel: z.string().min(1), ts: z.string().min(1) });

export const runRecordSchema: z.ZodType<RunRecord> = z.looseObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a run id'),
  runbook: z.string().min(1),
  runbookVersion: z.number().int(),
  params: z.record(z.string(), z.unknown()),
  node: z.string(),
  summary: z.string(),
  requester: who,
  dryRun: z.boolean(),
  createdAt: epochMs,
  status: z.enum(RUN_STATUSES),
  currentStep: z.string().optional(),
  steps: z.array(stepRecordSchema),
  facts: z.record(z.string(), factSchema),
  lockKey: z.string(),
  fencingToken: z.number().int().optional(),
  owner: z.string().optional(),
  endedAt: epochMs.optional(),
  error: z.string().optional(),
  pauseReason: z.string().optional(),
  note: z.string().optional(),
  thread: threadSchema.optional(),
});
