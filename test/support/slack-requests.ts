/**
 * Requests as Slack sends them: form-encoded slash commands and block_actions (a `payload` field holding
 * JSON), signed with signature v0 as Slack documents it: `v0=` + hex HMAC-SHA256, keyed with the signing
 * secret, of `v0:{X-Slack-Request-Timestamp}:{raw body}`.
 */
import { createHmac } from 'node:crypto';

export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SlashCommand {
  /** `/failover`, `/cell`, or anything else to test unknown commands. */
  readonly command: string;
  readonly text: string;
  readonly user: string;
  readonly channel?: string;
  readonly responseUrl: string;
  readonly triggerId?: string;
}

let triggerSeq = 0;

function triggerId(): string {
  triggerSeq += 1;
  return `${Date.now()}.${process.pid}.${triggerSeq}`;
}

export function slashCommandBody(command: SlashCommand): string {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: 'T0TEAM',
    team_domain: 'cell',
    channel_id: command.channel ?? 'C0ALERTS',
    channel_name: 'alerts',
    user_id: command.user,
    user_name: command.user.toLowerCase(),
    command: command.command,
    text: command.text,
    api_app_id: 'A0APP',
    is_enterprise_install: 'false',
    response_url: command.responseUrl,
    trigger_id: command.triggerId ?? triggerId(),
  }).toString();
}

export interface ButtonClick {
  readonly actionId: string;
  readonly value: string;
  readonly user: string;
  readonly responseUrl: string;
  readonly channel?: string;
  readonly messageTs?: string;
  /** Distinct per click; a redelivery repeats it. */
  readonly actionTs?: string;
}

let actionSeq = 0;

export function blockActionsBody(click: ButtonClick): string {
  actionSeq += 1;
  const channel = click.channel ?? 'C0ALERTS';
  const payload = {
    type: 'block_actions',
    user: {
      id: click.user,
      username: click.user.toLowerCase(),
      name: click.user.toLowerCase(),
      team_id: 'T0TEAM',
    },
    api_app_id: 'A0APP',
    token: 'deprecated-verification-token',
    container: {
      type: 'message',
      message_ts: click.messageTs ?? '1700000000.000001',
      channel_id: channel,
      is_ephemeral: false,
    },
    trigger_id: triggerId(),
    team: { id: 'T0TEAM', domain: 'cell' },
    channel: { id: channel, name: 'alerts' },
    message: { type: 'message', ts: click.messageTs ?? '1700000000.000001', text: 'approval', blocks: [] },
    response_url: click.responseUrl,
    state: { values: {} },
    actions: [
      {
        type: 'button',
        action_id: click.actionId,
        block_id: 'approval',
        text: { type: 'plain_text', text: 'Approve' },
        value: click.value,
        action_ts: click.actionTs ?? `${Math.floor(Date.now() / 1000)}.${String(actionSeq).padStart(6, '0')}`,
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export interface SignOptions {
  readonly secret: string;
  /** Unix seconds; default now. */
  readonly timestamp?: number;
  /** Overrides the computed signature (forgeries). */
  readonly signature?: string;
}

/** POSTs a form body to the bot's /slack/events with Slack's headers. */
export async function postSigned(
  url: string,
  body: string,
  options: SignOptions,
): Promise<{ status: number; text: string }> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      // Bolt compares the content type exactly: no charset suffix.
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': options.signature ?? slackSignature(options.secret, timestamp, body),
    },
    body,
  });
  return { status: response.status, text: await response.text() };
}

/** A slash command as Socket Mode carries it: the same fields, as an object instead of a form. */
export function slashCommandPayload(command: SlashCommand): Record<string, unknown> {
  return Object.fromEntries(new URLSearchParams(slashCommandBody(command)));
}

/** A block_actions payload as Socket Mode carries it: the JSON object itself. */
export function blockActionsPayload(click: ButtonClick): Record<string, unknown> {
  return JSON.parse(new URLSearchParams(blockActionsBody(click)).get('payload') ?? '{}') as Record<
    string,
    unknown
  >;
}
