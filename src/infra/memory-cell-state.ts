/**
 * CellState kept in process memory: for unit tests and the sandbox. Production keeps it in Redis, because
 * a role recorded only in one process's memory would be lost with it (DESIGN.md §7).
 */
import type { CellState, ImageRecord, NodekeyBackupRecord, RoleAssignment } from '../ports/cell-state.js';

export function createMemoryCellState(): CellState {
  const roles = new Map<string, RoleAssignment>();
  const backups = new Map<string, NodekeyBackupRecord>();
  const images = new Map<string, ImageRecord>();
  return {
    async role(role) {
      return roles.get(role);
    },
    async setRole(assignment) {
      roles.set(assignment.role, { ...assignment });
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
}
