/**
 * CellState kept in process memory: for unit tests and the sandbox. Production keeps it in Redis, because
 * a role recorded only in one process's memory would be lost with it (docs/architecture.md §What lives where
 * at run time).
 */
import {
  assignmentOf,
  changeOfAssignment,
  nextRoles,
  ROLE_HISTORY_LIMIT,
  type CellState,
  type CnRoles,
  type ImageRecord,
  type NodekeyBackupRecord,
} from '../ports/cell-state.js';

export function createMemoryCellState(): CellState {
  const roles = new Map<string, CnRoles>();
  const history = new Map<string, CnRoles[]>();
  const backups = new Map<string, NodekeyBackupRecord>();
  const images = new Map<string, ImageRecord>();
  let version = 0;
  const state: CellState = {
    async roles(cn) {
      return roles.get(cn);
    },
    async recordRoles(change) {
      version += 1;
      const next = nextRoles(roles.get(change.cn), change, version);
      roles.set(change.cn, next);
      history.set(change.cn, [next, ...(history.get(change.cn) ?? [])].slice(0, ROLE_HISTORY_LIMIT));
      return next;
    },
    async roleHistory(cn, limit) {
      return (history.get(cn) ?? []).slice(0, Math.max(0, limit));
    },
    async rolesVersion() {
      return version;
    },
    async role(role) {
      const current = roles.get(role);
      return current === undefined ? undefined : assignmentOf(current);
    },
    async setRole(assignment) {
      await state.recordRoles(changeOfAssignment(roles.get(assignment.role), assignment));
    },
    async nodekeyBackup(cn) {
      return backups.get(cn);
    },
    async setNodekeyBackup(record) {
      backups.set(record.cn, { ...record });
    },
    async image(cn) {
      return images.get(cn);
    },
    async setImage(record) {
      images.set(record.cn, { ...record });
    },
  };
  return state;
}
