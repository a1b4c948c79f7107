/**
 * Builders for the monitor's tests: a small cell configuration (cn1 with standby cn1s, cn2, pn1) and an
 * in-memory CellState.
 */
import { resolveConfig, type CellopsConfig } from '../../src/config/config.js';
import { configSchema } from '../../src/config/schema.js';
import type { ChatCall, FakeChat } from '../fakes/fake-chat.js';
import { createMemoryCellState } from '../../src/infra/memory-cell-state.js';
import type { CellState } from '../../src/ports/cell-state.js';

export const MONITOR_CHANNEL = 'C0ALERTS';

export interface MonitorConfigOverrides {
  readonly monitor?: Record<string, unknown>;
  /** Replaces the default nodes entirely. */
  readonly nodes?: Record<string, Record<string, unknown>>;
}

export function monitorConfig(overrides: MonitorConfigOverrides = {}): CellopsConfig {
  return resolveConfig(
    configSchema.parse({
      cell: 'test-cell',
      slack: { channel: MONITOR_CHANNEL, approvers: { users: ['U0AAA'] } },
      ssh: { user: 'ops', privateKey: '/etc/cellops/id', knownHosts: '/etc/cellops/known_hosts' },
      monitor: { checkInterval: '0s', ...overrides.monitor },
      nodes: overrides.nodes ?? {
        cn1: { role: 'cn', host: '10.0.1.11' },
        cn1s: { role: 'standby', host: '10.0.1.12' },
        cn2: { role: 'cn', host: '10.0.2.11' },
        pn1: { role: 'pn', host: '10.0.3.11', dataDir: '/var/kpnd/data' },
      },
    }),
  );
}

/** The in-memory CellState the monitor's tests share. */
export function memoryCellState(): CellState {
  return createMemoryCellState();
}

export type ChatPost = Extract<ChatCall, { kind: 'post' }>;

/** The alerts posted in the channel (not in a thread). */
export function channelPosts(chat: FakeChat): ChatPost[] {
  return chat.posts().filter((p) => p.message.threadTs === undefined);
}

/** The texts posted in a message's thread, oldest first. */
export function threadTexts(chat: FakeChat, parent: ChatPost): string[] {
  return chat
    .posts()
    .filter((p) => p.message.threadTs === parent.ref.ts)
    .map((p) => p.message.text);
}
