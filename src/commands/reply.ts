import type { Block } from '../ports/chat.js';

/**
 * What a command or button handler answers, independent of Slack's transport: the Bolt layer sends it
 * through `response_url` (ephemeral or in the channel), the sandbox shows it in its console.
 */
export interface Reply {
  /** Notification fallback and the whole answer where blocks are not shown. */
  readonly text: string;
  readonly blocks?: readonly Block[];
  /** Only the person who typed the command or clicked sees it. */
  readonly ephemeral: boolean;
}
