/** Every runbook the bot offers, for the engine and the commands. */
import type { AnyRunbook } from './types.js';
import { failoverRunbook } from './failover.js';
import { backupNodekeyRunbook } from './backup-nodekey.js';
import { imageRunbook } from './image.js';
import { checkRunbook } from './check.js';
import { setRolesRunbook } from './set-roles.js';
import { cleanupRunbook } from './cleanup.js';
import { rebuildStandbyRunbook } from './rebuild-standby.js';

export function createRunbooks(): AnyRunbook[] {
  return [
    failoverRunbook,
    backupNodekeyRunbook,
    imageRunbook,
    checkRunbook,
    setRolesRunbook,
    cleanupRunbook,
    rebuildStandbyRunbook,
  ];
}
