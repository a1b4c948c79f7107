/**
 * What the sandbox console's requests do: slash commands and button clicks go to the same command
 * handlers Slack's listeners call, and their replies are shown ephemeral or in the channel as Slack would;
 * faults and "Reset cell" act on the simulated cell.
 */
import { InputError } from '../errors.js';
import type { CellState } from '../ports/cell-state.js';
import type { MessageRef } from '../ports/chat.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Engine, RunStatus } from '../runbooks/types.js';
import type { CommandHandlers } from '../commands/handlers.js';
import type { Reply } from '../commands/reply.js';
import { alertActionKind, RUN_ACTIONS } from '../views/action-ids.js';
import { renderNotice } from '../views/cell.js';
import { escapeText, mention } from '../views/kit.js';
import type { ConsoleChat } from './console-chat.js';
import type { ConsoleHandlers } from './console-server.js';
import { applyFault, isSandboxFault } from './faults.js';
import { recordSandboxState, SANDBOX_USERS, type SandboxCell, type SandboxKeys } from './sim-cell-seed.js';

export interface ConsoleHandlerDeps {
  readonly chat: ConsoleChat;
  readonly channel: string;
  readonly commands: CommandHandlers;
  readonly engine: Engine;
  readonly cell: SandboxCell;
  /** Where the cell's roles, backups and image are recorded (put back on reset). */
  readonly state: CellState;
  readonly keys: SandboxKeys;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Posts a notice in the channel (or in a thread). */
  readonly say: (mrkdwn: string, threadTs?: string) => Promise<MessageRef>;
  readonly health: ConsoleHandlers['health'];
  readonly metrics: ConsoleHandlers['metrics'];
  readonly pager?: ConsoleHandlers['pager'];
}

const ACTIVE: readonly RunStatus[] = ['pending', 'running', 'waiting-approval', 'paused'];

/** Splits `/failover cn1 --dry-run` into the command and its text. */
function splitCommand(input: string): { command: string; text: string } {
  const trimmed = input.trim();
  const space = trimmed.search(/\s/);
  if (space < 0) return { command: trimmed.toLowerCase(), text: '' };
  return { command: trimmed.slice(0, space).toLowerCase(), text: trimmed.slice(space + 1).trim() };
}

function knownUser(user: string): void {
  if (!SANDBOX_USERS.some((u) => u.id === user)) throw new InputError(`unknown sandbox user "${user}"`);
}

async function sendReply(
  deps: ConsoleHandlerDeps,
  user: string,
  reply: Reply | undefined,
  threadTs?: string,
): Promise<void> {
  if (!reply) return;
  await deps.chat.reply(
    deps.channel,
    user,
    {
      text: reply.text,
      ...(reply.blocks === undefined ? {} : { blocks: reply.blocks }),
      ...(threadTs === undefined ? {} : { threadTs }),
    },
    reply.ephemeral,
  );
}

async function resetCell(deps: ConsoleHandlerDeps, user: string): Promise<void> {
  const active = (await deps.engine.list(50)).filter((r) => ACTIVE.includes(r.status));
  const first = active[0];
  if (first) {
    await sendReply(deps, user, {
      ...renderNotice(
        `:no_entry: Not reset: run \`${escapeText(first.id)}\` (${escapeText(first.summary)}) is ${first.status}. Abort it first with \`/cell abort ${escapeText(first.id)}\`.`,
      ),
      ephemeral: true,
    });
    return;
  }
  deps.cell.reset();
  // The EC2 side is new too: cn2 on its own instance again, with the image and backups recorded as at start.
  await recordSandboxState(deps.state, deps.keys, deps.clock.now(), 'sandbox-reset');
  deps.logger.info({ user }, 'SANDBOX: cell reset');
  await deps.say(
    `:arrows_counterclockwise: ${mention(user)} reset the simulated cell: every node healthy, cn1 active with its standby cn1s again, cn2 on its own instance with its Elastic IP (same nodekeys, backups and image in place). Try again.`,
  );
}

async function runCommand(deps: ConsoleHandlerDeps, input: string, user: string): Promise<void> {
  knownUser(user);
  const { command, text } = splitCommand(input);
  const request = { user, channel: deps.channel, text };
  let reply: Reply;
  if (command === '/failover') reply = await deps.commands.failover(request);
  else if (command === '/cell') reply = await deps.commands.cell(request);
  else {
    reply = {
      ...renderNotice(
        `:grey_question: \`${escapeText(command || input)}\` is not a cellops command here. Try \`/cell help\`, \`/cell status\`, \`/failover cn1\` or \`/cell drill failover cn1\`.`,
      ),
      ephemeral: true,
    };
  }
  await sendReply(deps, user, reply);
}

async function click(
  deps: ConsoleHandlerDeps,
  input: Parameters<ConsoleHandlers['action']>[0],
): Promise<void> {
  knownUser(input.user);
  const inThread = input.threadTs !== input.messageTs ? input.threadTs : undefined;
  const runDecision = (['approve', 'abort', 'cleanup'] as const).find(
    (d) => RUN_ACTIONS[d] === input.actionId,
  );
  if (runDecision !== undefined) {
    const decision = runDecision;
    const reply = await deps.commands.runAction({ user: input.user, decision, value: input.value });
    await sendReply(deps, input.user, reply, inThread);
    return;
  }
  const action = alertActionKind(input.actionId);
  if (action === undefined) throw new InputError(`unknown action "${input.actionId}"`);
  const reply = await deps.commands.alertAction({
    user: input.user,
    channel: deps.channel,
    action,
    value: input.value,
  });
  await sendReply(deps, input.user, reply, inThread);
}

async function injectFault(
  deps: ConsoleHandlerDeps,
  node: string,
  fault: string,
  user: string,
): Promise<void> {
  knownUser(user);
  if (fault === 'reset') {
    await resetCell(deps, user);
    return;
  }
  if (!isSandboxFault(fault)) throw new InputError(`unknown fault "${fault}"`);
  const outcome = applyFault(deps.cell.current().sim, node, fault);
  deps.logger.info({ node, fault, user, changed: outcome.changed }, `SANDBOX fault: ${outcome.text}`);
  if (!outcome.changed) {
    await sendReply(deps, user, {
      ...renderNotice(`:information_source: ${escapeText(outcome.text)}`),
      ephemeral: true,
    });
    return;
  }
  await deps.say(`:test_tube: ${mention(user)} injected a fault: ${escapeText(outcome.text)}`);
}

export function createConsoleHandlers(deps: ConsoleHandlerDeps): ConsoleHandlers {
  return {
    command: (input, user) => runCommand(deps, input, user),
    action: (input) => click(deps, input),
    fault: (node, fault, user) => injectFault(deps, node, fault, user),
    health: deps.health,
    metrics: deps.metrics,
    ...(deps.pager === undefined ? {} : { pager: deps.pager }),
  };
}
