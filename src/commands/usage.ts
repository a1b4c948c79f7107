/**
 * The usage of the slash commands: what the parser quotes when input is wrong and what `/cell help` lists.
 */
import type { HelpUsage } from '../views/cell.js';

export const FAILOVER_USAGE = '/failover <cn> [--mode standby|snapshot] [--switchover] [--dry-run] [--force]';

export const CELL_USAGE: readonly (readonly [string, string])[] = [
  ['/cell status', 'nodes, roles, heights, lag, health and the run in progress'],
  ['/cell runs', 'the latest runs'],
  ['/cell abort <run>', 'stop a run before its next step'],
  ['/cell resume <run>', 'resume a paused run'],
  ['/cell mute <node> <duration>', 'mute alerts for a node, e.g. `/cell mute cn1 30m`'],
  ['/cell unmute <node>', 'unmute alerts for a node'],
  ['/cell backup-nodekey <cn>', "copy the CN's nodekey to its backup location"],
  ['/cell image <cn>', 'create a machine image of the CN'],
  ['/cell check <cn>', 'readiness check of the CN, its standby, backup and image'],
  ['/cell roles <cn>', 'which machine serves the CN and which stands by, with the history of changes'],
  [
    '/cell roles <cn> set served-by=<node> standby=<node|none>',
    'record roles changed by hand, after checking they are true (with approval)',
  ],
  [
    '/cell cleanup <run>',
    'terminate and delete the cloud resources a run left (tagged with its id), after an approval',
  ],
  [
    '/cell report <run>',
    "post-incident report in the run's thread: timeline, time to recover, missed blocks",
  ],
  [
    '/cell rebuild-standby <cn> [--host <node>]',
    "make a machine the CN's standby again (default: the one that served it before its last failover)",
  ],
  ['/cell help', 'this help'],
];

export const DRILL_USAGE: readonly [string, string] = [
  '/cell drill failover <cn>',
  'sandbox only: a whole failover with approvals given, timed step by step',
];

export const DRILL_SWITCHOVER_USAGE: readonly [string, string] = [
  '/cell drill switchover <cn>',
  'sandbox only: a planned switchover with approvals given, with the blocks missed',
];

/** The `/cell` commands of this process: the drills only in the sandbox. */
export function cellUsage(options: { sandbox?: boolean } = {}): readonly (readonly [string, string])[] {
  return options.sandbox ? [...CELL_USAGE, DRILL_USAGE, DRILL_SWITCHOVER_USAGE] : CELL_USAGE;
}

/** What `/cell help` lists. */
export function helpUsage(options: { sandbox?: boolean } = {}): HelpUsage {
  return { failover: FAILOVER_USAGE, commands: cellUsage(options) };
}
