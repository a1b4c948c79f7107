/**
 * The Slack side of bench/ack.bench.ts, in its own process: it sends the signed requests and times their
 * HTTP answers, and it is the `response_url` the bot answers on. In the bot's process, the client's own
 * work (signing, 50 sockets, reading 50 answers) and the receipt of the bot's answers would queue on the
 * same event loop as the acknowledgements being measured; Slack does neither in the bot's process.
 *
 * Protocol (IPC): the child sends `{ type: 'ready' }`; the parent sends
 * `{ type: 'round', id, url, kind, count, answers }` and gets back `{ type: 'round', id, latencies }`
 * once every request was answered and, when `answers` is true, every request's response_url post has
 * arrived (so the bot's after-ack work is over before the next round starts); `{ type: 'stop' }` ends it.
 */
import { Agent, request } from 'node:http';
import { RUN_ACTIONS } from '../src/views/action-ids.js';
import { APPROVER_A, OPERATOR } from '../test/support/bot-fixtures.js';
import { SIGNING_SECRET } from '../test/support/bot-harness.js';
import { blockActionsBody, slackSignature, slashCommandBody } from '../test/support/slack-requests.js';
import { startSlackStandIn } from '../test/support/slack-stand-in.js';

export type AckKind = 'command' | 'click';

export interface RoundRequest {
  readonly type: 'round';
  readonly id: number;
  readonly url: string;
  readonly kind: AckKind;
  readonly count: number;
  /** Wait for one response_url post per request before answering. */
  readonly answers: boolean;
}

export type ParentMessage = RoundRequest | { readonly type: 'stop' };

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'round'; readonly id: number; readonly latencies: number[] }
  | { readonly type: 'error'; readonly message: string };

/** Waiting for the bot's answers longer than this means it lost some: the round fails. */
const ANSWER_TIMEOUT_MS = 30_000;

const send = (message: ChildMessage): void => {
  process.send?.(message);
};

async function main(): Promise<void> {
  const slack = await startSlackStandIn();
  // One keep-alive socket per concurrent request, as Slack's senders keep connections open.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let seq = 0;

  const body = (kind: AckKind, responseId: string): string =>
    kind === 'command'
      ? slashCommandBody({
          command: '/cell',
          text: 'help',
          user: OPERATOR,
          responseUrl: slack.responseUrl(responseId),
        })
      : // A click on a run that does not exist: acked first, then answered "no run" through response_url.
        blockActionsBody({
          actionId: RUN_ACTIONS.approve,
          value: JSON.stringify({ runId: 'nosuchrun', stepId: 'fence', round: 1 }),
          user: APPROVER_A,
          responseUrl: slack.responseUrl(responseId),
        });

  const post = (url: string, payload: string): Promise<number> => {
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': String(Buffer.byteLength(payload)),
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': slackSignature(SIGNING_SECRET, timestamp, payload),
    };
    return new Promise<number>((resolve, reject) => {
      const start = process.hrtime.bigint();
      const req = request(url, { method: 'POST', headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - start) / 1e6;
          if (res.statusCode === 200) resolve(ms);
          else reject(new Error(`HTTP ${res.statusCode} from ${url}`));
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  };

  const round = async (message: RoundRequest): Promise<number[]> => {
    const ids = Array.from({ length: message.count }, () => `r${++seq}`);
    const payloads = ids.map((id) => body(message.kind, id));
    const latencies = await Promise.all(payloads.map((payload) => post(message.url, payload)));
    if (message.answers) {
      const wanted = new Set(ids);
      await slack.waitFor(
        `${wanted.size} response_url posts`,
        () => slack.responses.filter((r) => wanted.has(r.id)).length === wanted.size,
        ANSWER_TIMEOUT_MS,
      );
    }
    return latencies;
  };

  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stop') {
      agent.destroy();
      void slack.close().then(() => process.exit(0));
      return;
    }
    round(message).then(
      (latencies) => send({ type: 'round', id: message.id, latencies }),
      (error: unknown) =>
        send({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
    );
  });
  send({ type: 'ready' });
}

main().catch((error: unknown) => {
  send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
