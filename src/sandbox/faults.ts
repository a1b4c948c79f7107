/**
 * Faults the sandbox console can inject into the simulated cell, through sim-hosts' own controls, so the
 * monitor and the runbooks meet them exactly as they would meet a real node's trouble:
 * - `stop`: kcnd stops (the process died): RPC and metrics stop answering; the monitor calls it down.
 * - `stall`: kcnd keeps answering but its height freezes; the monitor calls it stalled (and lagging).
 * - `isolate`: the node is cut off from the other CNs: it reports 0 CN peers and signs nothing, while its
 *   PNs still bring it blocks; the monitor calls it isolated.
 * - `heal`: brings it back: peers again, height following the chain, kcnd started if it was stopped —
 *   unless a failover fenced it (its nodekey moved aside), which only `Reset cell` undoes.
 */
import { InputError } from '../errors.js';
import type { SimCell, SimHost } from './sim-hosts.js';

export const SANDBOX_FAULTS = ['stop', 'stall', 'isolate', 'heal'] as const;
export type SandboxFault = (typeof SANDBOX_FAULTS)[number];

export function isSandboxFault(value: string): value is SandboxFault {
  return (SANDBOX_FAULTS as readonly string[]).includes(value);
}

/** What happened, in words for the channel (mrkdwn-free plain text). */
export interface FaultOutcome {
  readonly node: string;
  readonly fault: SandboxFault;
  readonly text: string;
  /** False when the fault changed nothing (e.g. stopping a stopped node). */
  readonly changed: boolean;
}

function hostOf(sim: SimCell, node: string): SimHost {
  try {
    return sim.host(node);
  } catch {
    throw new InputError(`There is no simulated node "${node}".`);
  }
}

function hasNodekey(host: SimHost): boolean {
  return (
    host.read(`${host.dataDir}/klay/nodekey`) !== undefined ||
    host.read(`${host.dataDir}/nodekey`) !== undefined
  );
}

export function applyFault(sim: SimCell, node: string, fault: SandboxFault): FaultOutcome {
  const host = hostOf(sim, node);
  const done = (text: string, changed = true): FaultOutcome => ({ node, fault, text, changed });
  switch (fault) {
    case 'stop':
      if (!host.isRunning()) return done(`${host.service} on ${node} is already stopped.`, false);
      host.stopDaemon();
      return done(`stopped ${host.service} on ${node} (as if the process died): it answers no probes now.`);
    case 'stall': {
      if (!host.isRunning())
        return done(`${host.service} on ${node} is stopped; there is nothing to stall.`, false);
      host.stall();
      return done(
        `stalled ${node}: ${host.service} keeps answering, but its height stays at ${host.height()}.`,
      );
    }
    case 'isolate': {
      if (host.isolated) return done(`${node} is already cut off from its peers.`, false);
      host.isolated = true;
      return done(
        `cut ${node} off from the other CNs: it reports 0 CN peers and takes no part in consensus (its PNs still bring it blocks).`,
      );
    }
    case 'heal': {
      const notes: string[] = [];
      if (host.isolated) {
        host.isolated = false;
        notes.push('reconnected it to the other CNs');
      }
      if (host.isRunning() && host.isStalled()) {
        host.resume();
        notes.push('its height follows the chain again');
      }
      if (!host.isRunning()) {
        if (!host.isPoweredOn()) {
          notes.push(
            `left ${host.service} stopped: its EC2 instance is stopped (a failover fenced it); use Reset cell to start over`,
          );
          return done(`${node}: ${notes.join('; ')}.`, notes.length > 1);
        }
        if (host.kind === 'cn' && !hasNodekey(host)) {
          notes.push(
            `left ${host.service} stopped: its nodekey was moved aside by a failover's fence (so it cannot come back with its old identity); use Reset cell to start over`,
          );
          return done(`${node}: ${notes.join('; ')}.`, notes.length > 1);
        }
        host.startDaemon();
        notes.push(`started ${host.service}`);
      }
      if (notes.length === 0) return done(`${node} is healthy already; nothing to bring back.`, false);
      return done(`brought ${node} back: ${notes.join('; ')}.`);
    }
  }
}
