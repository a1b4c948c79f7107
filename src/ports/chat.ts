/**
 * What cellops says to people. Real adapter: src/bot/slack-chat.ts (Slack Web API); the sandbox renders
 * the same messages in its web console; unit tests record them in test/fakes/fake-chat.ts.
 *
 * Blocks are Slack Block Kit JSON produced by the pure renderers in src/views.
 */
export type Block = Readonly<Record<string, unknown>>;

export interface MessageRef {
  readonly channel: string;
  readonly ts: string;
}

export interface OutgoingMessage {
  readonly channel: string;
  /** Posts into this thread when set. */
  readonly threadTs?: string;
  /** Notification fallback and accessibility text; always set. */
  readonly text: string;
  readonly blocks?: readonly Block[];
}

export interface Chat {
  post(message: OutgoingMessage): Promise<MessageRef>;
  update(ref: MessageRef, message: Omit<OutgoingMessage, 'channel' | 'threadTs'>): Promise<void>;
  postEphemeral(channel: string, user: string, message: Omit<OutgoingMessage, 'channel'>): Promise<void>;
  /** A link to the message, or undefined when the platform cannot give one. */
  permalink(ref: MessageRef): Promise<string | undefined>;
  /** Members of a user group (Slack `S…` id). */
  usergroupMembers(usergroupId: string): Promise<readonly string[]>;
}
