/**
 * Who a rebuild-standby run is about (rebuild-standby.ts): the CN role, the machine serving it, and the
 * machine to make its standby — by default the one that served the CN before its last failover. The
 * refusals that need the recorded roles happen in `prepareRebuild`, before the run exists, so bad input
 * changes nothing.
 */
import { z } from 'zod';
import type { CellopsConfig, NodeInventoryEntry } from '../config/config.js';
import type { PlanContext, PrepareContext, StepContext, StepDefinition } from './types.js';
import {
  isCnMachine,
  knownCns,
  resolveCn,
  standbyLayout,
  type CnTarget,
  type StandbyLayout,
} from './cell-nodes.js';
import { InputError } from '../errors.js';

const nodeName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);

export const rebuildParamsSchema = z
  .object({
    /** The CN role whose standby is made, e.g. `cn1`. */
    cn: nodeName,
    /** The machine to make the standby; default: the one that served the CN before its last failover. */
    host: nodeName.optional(),
    /** The machine serving the CN when the run was requested (set by prepare). */
    active: nodeName.optional(),
  })
  .strict();

export type RebuildParams = z.output<typeof rebuildParamsSchema>;
export type RebuildStep = StepDefinition<RebuildParams>;
export type RebuildContext = StepContext<RebuildParams>;
export type RebuildPlan = PlanContext<RebuildParams>;

export interface RebuildTarget extends CnTarget {
  /** The machine serving the CN. */
  readonly active: NodeInventoryEntry;
  /** The machine being made the standby. */
  readonly host: NodeInventoryEntry;
}

function machine(config: CellopsConfig, name: string, what: string): NodeInventoryEntry {
  const node = config.nodes[name];
  const machines = Object.values(config.nodes)
    .filter(isCnMachine)
    .map((n) => n.name)
    .sort()
    .join(', ');
  if (!node)
    throw new InputError(`Unknown node "${name}" for ${what}. Machines that can run kcnd: ${machines}.`);
  if (!isCnMachine(node))
    throw new InputError(
      `${name} is a ${node.role}, not a machine that runs kcnd (${what}). Machines: ${machines}.`,
    );
  return node;
}

function standbyModeCn(config: CellopsConfig, name: string): CnTarget {
  const t = resolveCn(config, name);
  if (t.failover.mode !== 'standby')
    throw new InputError(
      `${name} fails over in mode ${t.failover.mode}: it has no standby machine to rebuild (a snapshot-mode CN is replaced from its image).`,
    );
  return t;
}

/** The machine that served the CN before its last failover, else the configuration's other machine. */
function defaultHost(t: CnTarget, layout: Pick<StandbyLayout, 'active' | 'recorded'>): string | undefined {
  if (layout.recorded?.previous !== undefined) return layout.recorded.previous;
  return layout.active === t.role ? t.failover.standby : t.role;
}

/** The run's CN, its serving machine and the machine to rebuild, from parameters and configuration. */
export function rebuildTargetOf(ctx: {
  readonly config: CellopsConfig;
  readonly params: RebuildParams;
}): RebuildTarget {
  const { config, params } = ctx;
  const t = standbyModeCn(config, params.cn);
  const active = machine(config, params.active ?? t.role, `the machine serving ${t.role}`);
  const hostName = params.host ?? defaultHost(t, { active: active.name });
  if (hostName === undefined)
    throw new InputError(`Which machine should become ${t.role}'s standby? Name it with --host.`);
  return { ...t, active, host: machine(config, hostName, `${t.role}'s standby`) };
}

/**
 * Settles the machine serving the CN and the one to rebuild from the recorded roles, refusing a machine
 * that serves the CN (or another CN, or stands by for another CN).
 */
export async function prepareRebuild(
  params: RebuildParams,
  { config, state }: PrepareContext,
): Promise<RebuildParams> {
  const t = standbyModeCn(config, params.cn);
  const layout = await standbyLayout(config, state, params.cn);
  const host = params.host ?? defaultHost(t, layout);
  if (host === undefined)
    throw new InputError(`Which machine should become ${t.role}'s standby? Name it with --host.`);
  machine(config, host, `${t.role}'s standby`);
  if (host === layout.active)
    throw new InputError(
      `${host} serves ${t.role} now: the machine that serves a CN cannot be its standby. Nothing was changed. Name another machine with --host${layout.recorded?.previous ? ` (by default ${layout.recorded.previous}, which served it before)` : ''}.`,
    );
  for (const other of knownCns(config)) {
    if (other === t.role || config.nodes[other]?.failover?.mode !== 'standby') continue;
    const theirs = await standbyLayout(config, state, other);
    if (theirs.active === host)
      throw new InputError(
        `${host} serves ${other} now: it cannot also stand by for ${t.role}. Nothing was changed.`,
      );
    if (theirs.standby === host)
      throw new InputError(
        `${host} is ${other}'s standby: it cannot stand by for ${t.role} as well. Nothing was changed.`,
      );
  }
  return { cn: params.cn, host, active: layout.active };
}
