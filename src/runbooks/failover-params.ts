/**
 * Parameters of the `failover` runbook, shared by its two modes (failover-standby.ts,
 * failover-snapshot.ts). `mode` defaults to the node's configured failover mode.
 */
import { z } from 'zod';
import type { PlanContext, StepContext, StepDefinition } from './types.js';

const nodeName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);

export const failoverParamsSchema = z
  .object({
    /** Inventory name of the CN to fail over, e.g. `cn1`. */
    cn: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    mode: z.enum(['standby', 'snapshot']).optional(),
    /** Fail over a CN that looks healthy (a switchover). */
    force: z.boolean().default(false),
    /**
     * A planned switchover (standby mode): both machines healthy, everything prepared before the active
     * stops, one approval for the stop-to-start section (switchover.ts).
     */
    switchover: z.boolean().optional(),
    /**
     * Standby mode: the machine serving the CN and the one taking over, settled from the recorded roles
     * when the run is requested (failover.ts `prepare`); absent, the configuration's layout.
     */
    active: nodeName.optional(),
    standby: nodeName.optional(),
  })
  .strict();

export type FailoverParams = z.output<typeof failoverParamsSchema>;

/** A step of the failover runbook (either mode), what it runs with, and what its plan text may read. */
export type FailoverStep = StepDefinition<FailoverParams>;
export type FailoverContext = StepContext<FailoverParams>;
export type FailoverPlan = PlanContext<FailoverParams>;

/** Parameters of the per-CN runbooks: backup-nodekey, image, check. */
export const cnParamsSchema = z.object({ cn: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/) }).strict();
export type CnParams = z.output<typeof cnParamsSchema>;

export type CnStep = StepDefinition<CnParams>;
export type CnContext = StepContext<CnParams>;
export type CnPlan = PlanContext<CnParams>;

/** The one lock every mutating runbook of a cell takes: one failover (or backup, or image) at a time. */
export const CELL_LOCK = 'cell';
