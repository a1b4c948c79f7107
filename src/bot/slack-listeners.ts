/**
 * The Bolt listeners: the slash commands and the run and alert buttons, each acknowledged at once and then
 * handed to the plain handlers of src/commands. Answers go through `response_url` (ephemeral unless the
 * reply says otherwise; posted by ./response-url.ts rather than Bolt's respond(), see there why), falling
 * back to chat.postEphemeral. A redelivered request is acked and dropped (./redelivery.ts).
 */
import type { App, BlockAction, ButtonAction } from '@slack/bolt';
import type { Chat } from '../ports/chat.js';
import type { Logger } from '../ports/logger.js';
import type { CommandHandlers } from '../commands/handlers.js';
import type { Reply } from '../commands/reply.js';
import { ALERT_ACTIONS, RUN_ACTIONS, type AlertActionKind } from '../views/action-ids.js';
import { parseAlertActionValue } from '../views/action-values.js';
import type { FirstDelivery } from './redelivery.js';
import type { ResponseUrlPoster } from './response-url.js';

export interface AlertAction {
  readonly action: AlertActionKind;
  readonly node: string;
  readonly incident?: string | undefined;
  readonly user: string;
  readonly channel: string;
  /** The alert message clicked, when Slack says. */
  readonly messageTs?: string | undefined;
}

export interface ListenerDeps {
  readonly handlers: CommandHandlers;
  /** Resolves when the acknowledgements of a burst are out (./ack-gate.ts): work waits for it. */
  readonly afterAcks: () => Promise<void>;
  readonly firstDelivery: FirstDelivery;
  readonly responses: Pick<ResponseUrlPoster, 'post'>;
  /** For the chat.postEphemeral fallback. */
  readonly chat: Pick<Chat, 'postEphemeral'>;
  /** Where alert clicks are answered when Slack does not say the channel. */
  readonly channel: string;
  readonly logger: Logger;
  /** Called after an alert button was handled, e.g. for the monitor to edit its alert message. */
  readonly onAlertAction?: ((action: AlertAction) => Promise<void>) | undefined;
}

interface Delivery {
  readonly id: string | undefined;
  readonly retryNum: number | undefined;
  /** Where the answer goes (Slack's response_url of this request). */
  readonly responseUrl: string | undefined;
  readonly fallback: { channel: string | undefined; user: string };
  /** Click answers are new ephemeral messages, never a replacement of the clicked message. */
  readonly replaceOriginal?: boolean;
}

const COMMANDS = { failover: '/failover', cell: '/cell' } as const;

function toRespond(reply: Reply, replaceOriginal: boolean | undefined): Record<string, unknown> {
  return {
    response_type: reply.ephemeral ? 'ephemeral' : 'in_channel',
    text: reply.text,
    ...(reply.blocks === undefined ? {} : { blocks: reply.blocks }),
    ...(replaceOriginal === undefined ? {} : { replace_original: replaceOriginal }),
  };
}

async function answer(deps: ListenerDeps, reply: Reply | undefined, delivery: Delivery): Promise<void> {
  if (!reply) return;
  const { logger } = deps;
  try {
    if (!delivery.responseUrl) throw new Error('the request came without a response_url');
    await deps.responses.post(delivery.responseUrl, toRespond(reply, delivery.replaceOriginal));
  } catch (error) {
    logger.warn({ err: error }, 'response_url failed; answering with chat.postEphemeral');
    const { channel, user } = delivery.fallback;
    if (channel) {
      await deps.chat
        .postEphemeral(channel, user, { text: reply.text, ...(reply.blocks ? { blocks: reply.blocks } : {}) })
        .catch((e: unknown) => logger.error({ err: e }, 'could not answer the user at all'));
    }
  }
}

/**
 * Every listener: ack, then wait until the burst's acks are out (ack-gate.ts), then dedup and work; true
 * when the work ran. Without the wait, in a burst (50 clicks at once) the later acks would queue behind
 * the earlier requests' Redis round trips, handlers and response_url posts. A redelivery is acked and
 * dropped. Handlers answer their own errors (src/commands/handlers.ts renders them).
 */
async function acknowledged(
  deps: ListenerDeps,
  ack: () => Promise<void>,
  delivery: Delivery,
  work: () => Promise<Reply | undefined>,
): Promise<boolean> {
  await ack();
  await deps.afterAcks();
  if (!(await deps.firstDelivery(delivery.id, delivery.retryNum))) return false;
  await answer(deps, await work(), delivery);
  return true;
}

function clickDelivery(body: BlockAction<ButtonAction>, action: ButtonAction): string {
  return `${body.user.id}:${action.action_ts}:${action.action_id}`;
}

async function tellAlertAction(
  deps: ListenerDeps,
  kind: AlertActionKind,
  channel: string,
  body: BlockAction<ButtonAction>,
  value: string,
): Promise<void> {
  if (!deps.onAlertAction) return;
  // An unparsable value was already answered by the handler.
  const parsed = parseAlertActionValue(value);
  if (parsed === undefined) return;
  await deps
    .onAlertAction({
      action: kind,
      node: parsed.node,
      incident: parsed.incident,
      user: body.user.id,
      channel,
      messageTs: body.message?.ts,
    })
    .catch((error: unknown) => deps.logger.warn({ err: error }, 'onAlertAction failed'));
}

const RUN_DECISIONS: ReadonlyMap<string, 'approve' | 'abort' | 'cleanup'> = new Map(
  (Object.entries(RUN_ACTIONS) as ['approve' | 'abort' | 'cleanup', string][]).map(([decision, id]) => [
    id,
    decision,
  ]),
);
const ALERT_KINDS: ReadonlyMap<string, AlertActionKind> = new Map(
  (Object.entries(ALERT_ACTIONS) as [AlertActionKind, string][]).map(([kind, id]) => [id, kind]),
);

/** Exactly these strings, e.g. /^(?:\/failover|\/cell)$/. */
function oneOf(values: readonly string[]): RegExp {
  return new RegExp(`^(?:${values.map((v) => v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`);
}

/**
 * One listener for the commands and one for the buttons: Bolt runs every listener's matchers on every
 * request before the ack, so a listener per command and per button made each ack slower.
 */
export function registerListeners(app: App, deps: ListenerDeps): void {
  const { handlers } = deps;

  app.command(oneOf(Object.values(COMMANDS)), async ({ command: body, ack, context }) => {
    const request = { user: body.user_id, channel: body.channel_id, text: body.text ?? '' };
    const delivery = {
      id: body.trigger_id,
      retryNum: context.retryNum,
      responseUrl: body.response_url,
      fallback: { channel: body.channel_id, user: body.user_id },
    };
    await acknowledged(deps, ack, delivery, () =>
      body.command === COMMANDS.failover ? handlers.failover(request) : handlers.cell(request),
    );
  });

  const actionIds = [...RUN_DECISIONS.keys(), ...ALERT_KINDS.keys()];
  app.action<BlockAction<ButtonAction>>(
    { type: 'block_actions', action_id: oneOf(actionIds) },
    async ({ ack, body, action, context }) => {
      const decision = RUN_DECISIONS.get(action.action_id);
      const kind = ALERT_KINDS.get(action.action_id);
      const channel = decision === undefined ? (body.channel?.id ?? deps.channel) : body.channel?.id;
      const value = action.value ?? '';
      const delivery = {
        id: clickDelivery(body, action),
        retryNum: context.retryNum,
        responseUrl: body.response_url,
        fallback: { channel, user: body.user.id },
        replaceOriginal: false,
      };
      if (decision !== undefined) {
        await acknowledged(deps, ack, delivery, () =>
          handlers.runAction({ user: body.user.id, decision, value }),
        );
      } else if (kind !== undefined && channel !== undefined) {
        const handled = await acknowledged(deps, ack, delivery, () =>
          handlers.alertAction({ user: body.user.id, channel, action: kind, value }),
        );
        if (handled) await tellAlertAction(deps, kind, channel, body, value);
      }
    },
  );
}
