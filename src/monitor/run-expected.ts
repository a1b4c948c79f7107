/**
 * Nodes a run is working on (see ExpectedDisturbances in monitor-hooks.ts): the leader reads them once per
 * round; a node that would get an alert while a run works on it gets a note in the run's thread instead,
 * once per run, node and condition. When the run lets go of a node, its history is dropped, so it is
 * watched afresh: what the run caused (a kcnd it stopped and started again) is not alerted late, and a
 * real outage afterwards alerts as usual.
 */
import type { Chat } from '../ports/chat.js';
import type { Logger } from '../ports/logger.js';
import { renderThreadUpdate } from '../views/alert.js';
import type { ExpectedDisturbance, ExpectedDisturbances } from './monitor-hooks.js';
import type { Tracks } from './probe-round.js';
import type { Subject } from './subjects.js';
import type { NodeCondition } from './types.js';

export interface ExpectedState {
  /** Nodes runs worked on at the last round, by inventory name. */
  expected: ReadonlyMap<string, ExpectedDisturbance>;
  /** `<node> <run> <condition>` already noted in a run's thread. */
  readonly noted: Set<string>;
}

export function initialExpected(): ExpectedState {
  return { expected: new Map(), noted: new Set() };
}

/**
 * Reads what runs are working on now. Nodes no longer worked on lose their tracks (also as the CN role
 * they serve), so this round judges them from scratch. A failed read keeps the last answer.
 */
export async function refreshExpected(
  source: ExpectedDisturbances | undefined,
  state: ExpectedState,
  tracks: Tracks,
  subjects: readonly Subject[],
  logger: Logger,
): Promise<void> {
  if (!source) return;
  let current: ReadonlyMap<string, ExpectedDisturbance>;
  try {
    current = await source.current();
  } catch (error) {
    logger.warn({ err: error }, 'could not read what runs are working on; keeping the last answer');
    return;
  }
  for (const [node, was] of state.expected) {
    if (current.get(node)?.runId === was.runId) continue;
    logger.info({ node, run: was.runId }, 'the run no longer works on the node; watching it afresh');
    for (const subject of subjects) {
      if (subject.name === node || subject.servedBy === node) tracks.delete(subject.name);
    }
    for (const key of state.noted) if (key.startsWith(`${node} ${was.runId} `)) state.noted.delete(key);
  }
  state.expected = current;
}

/** The run working on the subject's node (or the machine serving its role), if any. */
export function expectedFor(
  state: ExpectedState,
  subject: Subject,
): { readonly node: string; readonly why: ExpectedDisturbance } | undefined {
  for (const node of [subject.name, subject.servedBy]) {
    const why = node === undefined ? undefined : state.expected.get(node);
    if (node !== undefined && why) return { node, why };
  }
  return undefined;
}

/** Says in the run's thread what the monitor sees instead of alerting, once per run, node and condition. */
export async function noteExpected(
  deps: { readonly chat: Chat; readonly logger: Logger },
  state: ExpectedState,
  node: string,
  why: ExpectedDisturbance,
  condition: NodeCondition,
): Promise<void> {
  const key = `${node} ${why.runId} ${condition}`;
  if (state.noted.has(key)) return;
  state.noted.add(key);
  deps.logger.info({ node, run: why.runId, condition }, 'no alert: a run is working on the node');
  if (!why.thread) return;
  const text =
    `:information_source: Monitor: ${node} is *${condition}* while this run works on it (${why.stepTitle}); ` +
    'no alert and no page. It is watched again when the run ends or pauses.';
  await deps.chat.post({
    channel: why.thread.channel,
    threadTs: why.thread.ts,
    ...renderThreadUpdate([text]),
  });
}
