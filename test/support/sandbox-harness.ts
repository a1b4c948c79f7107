/**
 * Helpers for tests that run the sandbox in-process on real timers: a sandbox kept fast (200 ms blocks
 * and probes, conditions after a second, memory stores), the buttons of a console message, and polling.
 */
import { startSandbox, type Sandbox, type StartSandboxOptions } from '../../src/sandbox/start-sandbox.js';
import type { ConsoleMessage } from '../../src/sandbox/console-chat.js';
import type { RunRecord } from '../../src/runbooks/types.js';
import { RUN_ACTIONS } from '../../src/views/action-ids.js';
import { RecordingLogger } from '../fakes/recording-logger.js';
import { until as pollUntil } from './until.js';

export const ALICE = 'U0ALICE';
export const BOB = 'U0BOB';

export async function startFastSandbox(
  extra: Partial<Omit<StartSandboxOptions, 'env' | 'logger'>> & { logger?: RecordingLogger } = {},
): Promise<Sandbox> {
  return startSandbox({
    env: { redisUrl: 'redis://127.0.0.1:1', redisUrlSet: true },
    port: 0,
    store: 'memory',
    blockMs: 200,
    monitor: { interval: '200ms', for: '1s', stall: '1s', failures: 2 },
    ...extra,
    logger: extra.logger ?? new RecordingLogger(),
  });
}

export function buttons(message: ConsoleMessage): { action_id: string; value: string }[] {
  return (message.blocks ?? [])
    .flatMap((block) => (block.elements as { action_id?: string; value?: string }[] | undefined) ?? [])
    .filter((e): e is { action_id: string; value: string } => typeof e.action_id === 'string');
}

/** Polls every 50 ms for up to `ms` (default 20 s). */
export function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
): Promise<T> {
  return pollUntil(what, probe, { timeoutMs: ms, everyMs: 50 });
}

/** Clicks Approve on every approval request as bob, as they come, until the run ends. */
export async function approveUntilDone(sb: Sandbox, runId: string): Promise<RunRecord> {
  const approved = new Set<string>();
  return until(`run ${runId} to finish with approvals`, async () => {
    for (const message of sb.chat.messages()) {
      const approve = buttons(message).find((b) => b.action_id === RUN_ACTIONS.approve);
      if (!approve || approved.has(message.ts)) continue;
      approved.add(message.ts);
      await sb.handlers.action({
        actionId: RUN_ACTIONS.approve,
        value: approve.value,
        user: BOB,
        messageTs: message.ts,
        threadTs: message.threadTs ?? message.ts,
      });
    }
    const run = await sb.engine.get(runId);
    return run && ['succeeded', 'failed', 'aborted'].includes(run.status) ? run : undefined;
  });
}
