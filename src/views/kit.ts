/**
 * Block Kit primitives that enforce Slack's limits, so no renderer can produce a message Slack rejects
 * (`invalid_blocks`) in the middle of a failover. Limits from Slack's Block Kit reference:
 * 50 blocks a message, section text 3,000 characters, fields 10 × 2,000, header 150, context 10 elements,
 * button text 75, button value 2,000, block_id/action_id 255.
 */
import type { Block } from '../ports/chat.js';
import { redactSecrets, redactThenTruncate } from '../infra/redact.js';

export const LIMITS = {
  blocks: 50,
  sectionText: 3_000,
  fieldText: 2_000,
  fields: 10,
  headerText: 150,
  contextElements: 10,
  buttonText: 75,
  buttonValue: 2_000,
  id: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  /** Top-level `text` (notification fallback): Slack truncates at 40,000; we keep it short. */
  fallbackText: 3_000,
} as const;

/** What every renderer returns: blocks plus the notification fallback text Slack needs with them. */
export interface RenderedMessage {
  readonly text: string;
  readonly blocks: Block[];
}

/** Escapes the three characters Slack's mrkdwn treats as control characters in user-supplied text. */
export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes text that may contain user mentions (`<@U…>`, `<!subteam^S…>`) made by us; they stay links. */
export function escapeKeepingMentions(text: string): string {
  return escapeText(text).replace(/&lt;(@[UW][A-Z0-9]{2,}|!subteam\^S[A-Z0-9]{2,})&gt;/g, '<$1>');
}

/**
 * Cuts `text` to at most `max` characters, keeping the head, and says how much was left out, so an
 * operator never mistakes a cut output for the whole of it.
 */
export function cutText(raw: string, max: number): string {
  // Redact before cutting: a cut could leave 63 of a key's 64 hex characters, which no longer look like one.
  const text = redactSecrets(raw);
  if (text.length <= max) return text;
  const note = (omitted: number) => `\n… (cut: ${omitted} more characters not shown)`;
  // The note's length depends on the number it prints; reserve room for the longest possible number.
  const room = Math.max(0, max - note(text.length).length);
  return redactSecrets(text.slice(0, room)) + note(text.length - room);
}

/** Like cutText but keeps the tail: the end of a command's output is where the error is. */
export function cutTail(raw: string, max: number): { text: string; omitted: number } {
  const text = redactSecrets(raw);
  if (text.length <= max) return { text, omitted: 0 };
  return { text: redactSecrets(text.slice(text.length - max)), omitted: text.length - max };
}

/** A Slack user mention for a user id; anything not shaped like an id is escaped, not linked. */
export function mention(user: string): string {
  return /^[UWB][A-Z0-9]{2,}$/.test(user) ? `<@${user}>` : escapeText(user);
}

/** A Slack user-group mention. */
export function groupMention(group: string): string {
  return /^S[A-Z0-9]{2,}$/.test(group) ? `<!subteam^${group}>` : escapeText(group);
}

/** `12:03:04 UTC`: wall-clock time of an epoch-ms instant, the same for every reader. */
export function clockTime(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(11, 19)} UTC`;
}

/** `2026-11-26 12:03 UTC`. */
export function dateTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** A mrkdwn section; text is already escaped by the caller and is cut to the limit here. */
export function section(mrkdwn: string, blockId?: string): Block {
  return {
    type: 'section',
    ...(blockId === undefined ? {} : { block_id: blockId.slice(0, LIMITS.id) }),
    text: { type: 'mrkdwn', text: cutText(mrkdwn || ' ', LIMITS.sectionText) },
  };
}

/** A section with up to ten two-column fields. */
export function fieldsSection(fields: readonly string[]): Block {
  return {
    type: 'section',
    fields: fields
      .slice(0, LIMITS.fields)
      .map((field) => ({ type: 'mrkdwn', text: cutText(field || ' ', LIMITS.fieldText) })),
  };
}

export function header(plain: string): Block {
  return {
    type: 'header',
    text: { type: 'plain_text', text: cutPlain(plain || ' ', LIMITS.headerText), emoji: true },
  };
}

export function context(mrkdwnElements: readonly string[]): Block {
  return {
    type: 'context',
    elements: mrkdwnElements
      .slice(0, LIMITS.contextElements)
      .map((text) => ({ type: 'mrkdwn', text: cutText(text || ' ', LIMITS.sectionText) })),
  };
}

export function divider(): Block {
  return { type: 'divider' };
}

/** A fenced code block for output; keeps the tail and says how much of the head was cut. */
export function codeBlock(text: string, max: number): string {
  const fenceRoom = 8; // ``` + newline on each side
  const { text: tail, omitted } = cutTail(text, Math.max(0, max - fenceRoom - 80));
  const note = omitted > 0 ? `_(output cut: the first ${omitted} characters are not shown)_\n` : '';
  // A ``` inside the output would close the fence early.
  return `${note}\`\`\`\n${escapeText(tail).replace(/```/g, "'''")}\n\`\`\``;
}

/** Cuts plain text to `max` characters, ending with an ellipsis when cut. */
export function cutPlain(text: string, max: number): string {
  return redactThenTruncate(text, max);
}

export interface ButtonOptions {
  readonly actionId: string;
  readonly text: string;
  readonly value: string;
  readonly style?: 'primary' | 'danger';
  readonly confirm?: {
    readonly title: string;
    readonly text: string;
    readonly confirm: string;
    readonly deny: string;
    readonly style?: 'primary' | 'danger';
  };
}

/** A button; throws when the value is too long, since a cut JSON value would be a broken button. */
export function button(options: ButtonOptions): Record<string, unknown> {
  if (options.value.length > LIMITS.buttonValue) {
    throw new RangeError(
      `button value is ${options.value.length} characters; Slack allows ${LIMITS.buttonValue}`,
    );
  }
  return {
    type: 'button',
    action_id: options.actionId.slice(0, LIMITS.id),
    text: { type: 'plain_text', text: cutPlain(options.text, LIMITS.buttonText), emoji: true },
    value: options.value,
    ...(options.style === undefined ? {} : { style: options.style }),
    ...(options.confirm === undefined
      ? {}
      : {
          confirm: {
            title: { type: 'plain_text', text: cutPlain(options.confirm.title, LIMITS.confirmTitle) },
            text: { type: 'plain_text', text: cutPlain(options.confirm.text, LIMITS.confirmText) },
            confirm: { type: 'plain_text', text: cutPlain(options.confirm.confirm, LIMITS.confirmButton) },
            deny: { type: 'plain_text', text: cutPlain(options.confirm.deny, LIMITS.confirmButton) },
            ...(options.confirm.style === undefined ? {} : { style: options.confirm.style }),
          },
        }),
  };
}

export function actions(blockId: string, elements: readonly Record<string, unknown>[]): Block {
  return { type: 'actions', block_id: blockId.slice(0, LIMITS.id), elements: elements.slice(0, 25) };
}

/**
 * Keeps a message within 50 blocks: the last kept block says how many were left out. Renderers put
 * what matters most (status, buttons) first for that reason.
 */
export function fitBlocks(blocks: readonly Block[]): Block[] {
  if (blocks.length <= LIMITS.blocks) return [...blocks];
  const kept = blocks.slice(0, LIMITS.blocks - 1);
  return [
    ...kept,
    context([`_… ${blocks.length - kept.length} more blocks not shown (Slack shows at most 50)._`]),
  ];
}

/** Builds a message, applying the block limit and a bounded fallback text. */
export function message(text: string, blocks: readonly Block[]): RenderedMessage {
  return { text: cutText(text, LIMITS.fallbackText), blocks: fitBlocks(blocks) };
}
