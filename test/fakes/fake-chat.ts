import type { Chat, MessageRef, OutgoingMessage } from '../../src/ports/chat.js';

export type ChatCall =
  | { readonly kind: 'post'; readonly ref: MessageRef; readonly message: OutgoingMessage }
  | {
      readonly kind: 'update';
      readonly ref: MessageRef;
      readonly message: Omit<OutgoingMessage, 'channel' | 'threadTs'>;
    }
  | {
      readonly kind: 'ephemeral';
      readonly channel: string;
      readonly user: string;
      readonly message: Omit<OutgoingMessage, 'channel'>;
    };

/**
 * A Chat that records every call in order. `gate` (when set) is awaited before each post/update, so tests
 * can hold Slack "slow" and see what the caller does meanwhile.
 */
export class FakeChat implements Chat {
  readonly calls: ChatCall[] = [];
  readonly groups = new Map<string, readonly string[]>();
  gate: (() => Promise<void>) | undefined;
  private seq = 0;

  async post(message: OutgoingMessage): Promise<MessageRef> {
    await this.gate?.();
    const ref = { channel: message.channel, ts: `1700000000.${String(++this.seq).padStart(6, '0')}` };
    this.calls.push({ kind: 'post', ref, message });
    return ref;
  }

  async update(ref: MessageRef, message: Omit<OutgoingMessage, 'channel' | 'threadTs'>): Promise<void> {
    await this.gate?.();
    this.calls.push({ kind: 'update', ref, message });
  }

  async postEphemeral(
    channel: string,
    user: string,
    message: Omit<OutgoingMessage, 'channel'>,
  ): Promise<void> {
    this.calls.push({ kind: 'ephemeral', channel, user, message });
  }

  async permalink(ref: MessageRef): Promise<string | undefined> {
    return `https://example.slack.com/archives/${ref.channel}/p${ref.ts.replace('.', '')}`;
  }

  async usergroupMembers(usergroupId: string): Promise<readonly string[]> {
    return this.groups.get(usergroupId) ?? [];
  }

  posts(): Extract<ChatCall, { kind: 'post' }>[] {
    return this.calls.filter((c): c is Extract<ChatCall, { kind: 'post' }> => c.kind === 'post');
  }

  updates(): Extract<ChatCall, { kind: 'update' }>[] {
    return this.calls.filter((c): c is Extract<ChatCall, { kind: 'update' }> => c.kind === 'update');
  }
}
