/**
 * The Chat port for the sandbox: messages live in memory and are pushed to the web console, which renders
 * the same Block Kit JSON the bot sends to Slack. Ephemeral messages are shown only to the user they are
 * for, as in Slack.
 */
import type { Chat, MessageRef, OutgoingMessage, Block } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';

export interface ConsoleMessage {
  readonly channel: string;
  readonly ts: string;
  readonly threadTs?: string;
  readonly text: string;
  readonly blocks?: readonly Block[];
  /** Set for ephemeral messages: only this user sees it. */
  readonly onlyFor?: string;
  readonly edited: boolean;
  /** Epoch ms of the first post. */
  readonly at: number;
}

export type ConsoleEvent = { readonly type: 'message'; readonly message: ConsoleMessage };

export interface ConsoleChat extends Chat {
  messages(): readonly ConsoleMessage[];
  subscribe(listener: (event: ConsoleEvent) => void): () => void;
  /** Posts a message as the result of a command (what Slack shows after a slash command). */
  reply(
    channel: string,
    user: string,
    message: Omit<OutgoingMessage, 'channel'>,
    ephemeral: boolean,
  ): Promise<void>;
}

export function createConsoleChat(deps: {
  clock: Clock;
  usergroups: Readonly<Record<string, readonly string[]>>;
  /** Bounded history: the console keeps the newest messages only. */
  maxMessages?: number;
}): ConsoleChat {
  const maxMessages = deps.maxMessages ?? 2_000;
  const messages = new Map<string, ConsoleMessage>();
  const listeners = new Set<(event: ConsoleEvent) => void>();
  let counter = 0;

  const nextTs = (): string => {
    counter += 1;
    return `${Math.floor(deps.clock.now() / 1000)}.${String(counter).padStart(6, '0')}`;
  };
  const emit = (message: ConsoleMessage): void => {
    messages.set(message.ts, message);
    while (messages.size > maxMessages) {
      const oldest = messages.keys().next().value;
      if (oldest === undefined) break;
      messages.delete(oldest);
    }
    for (const listener of listeners) listener({ type: 'message', message });
  };
  const store = (message: OutgoingMessage, onlyFor?: string): MessageRef => {
    const ts = nextTs();
    emit({
      channel: message.channel,
      ts,
      ...(message.threadTs === undefined ? {} : { threadTs: message.threadTs }),
      text: message.text,
      ...(message.blocks === undefined ? {} : { blocks: message.blocks }),
      ...(onlyFor === undefined ? {} : { onlyFor }),
      edited: false,
      at: deps.clock.now(),
    });
    return { channel: message.channel, ts };
  };

  return {
    post: async (message) => store(message),
    update: async (ref, message) => {
      const existing = messages.get(ref.ts);
      if (!existing) throw new Error(`message_not_found: ${ref.channel}/${ref.ts}`);
      emit({
        ...existing,
        text: message.text,
        ...(message.blocks === undefined ? {} : { blocks: message.blocks }),
        edited: true,
      });
    },
    postEphemeral: async (channel, user, message) => {
      store({ ...message, channel }, user);
    },
    permalink: async (ref) => `/#msg-${ref.ts}`,
    usergroupMembers: async (id) => deps.usergroups[id] ?? [],
    reply: async (channel, user, message, ephemeral) => {
      store({ ...message, channel }, ephemeral ? user : undefined);
    },
    messages: () => [...messages.values()],
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
