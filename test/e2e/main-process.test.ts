/**
 * The bot as operators run it: `src/main.ts` in its own process, configured only through the environment
 * and cellops.yaml (cellops.example.yaml), talking to a stand-in of Slack's Web API at SLACK_API_URL, a real
 * throwaway Redis and Prometheus stand-ins on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startSlackStandIn, type SlackStandIn } from '../support/slack-stand-in.js';
import {
  startHostileMetrics,
  startStandIns,
  type HostileMetrics,
  type StandIns,
} from '../support/metrics-stand-ins.js';
import { postSigned, slashCommandBody } from '../support/slack-requests.js';
import { freePort } from '../support/free-port.js';

const SECRET = 'e2e-signing-secret';
const TOKEN = 'xoxb-e2e-token-not-real';
const ROOT = new URL('../../', import.meta.url).pathname;

interface Bot {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function startMain(env: Record<string, string>): Bot {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitHttp(url: string, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(url);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Metrics URLs of the three nodes of the e2e cell: a CN, its standby and a PN. */
interface CellMetrics {
  readonly cn1: string;
  readonly cn1s: string;
  readonly pn1: string;
}

/**
 * Writes cellops.yaml for a cell of cn1 (standby failover to cn1s) and pn1 with these metrics URLs, starts
 * src/main.ts on a free port and waits for /healthz.
 */
async function startCellBot(
  cell: string,
  metrics: CellMetrics,
  deps: { readonly slack: SlackStandIn; readonly redis: RedisServer },
): Promise<{ bot: Bot; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), `cellops-${cell}-`));
  writeFileSync(join(dir, 'id_ed25519'), 'not a key: the e2e tests never reach SSH\n');
  writeFileSync(join(dir, 'known_hosts'), '');
  const config = {
    cell,
    slack: {
      channel: 'C0ALERTS',
      approvers: { users: ['U0AAA', 'U0BBB'] },
      operators: { users: ['U0CCC'] },
    },
    ssh: { user: 'ops', privateKey: join(dir, 'id_ed25519'), knownHosts: join(dir, 'known_hosts') },
    monitor: { interval: '1s', lagBlocks: 10, for: '2s', stall: '3s', failures: 3, checkInterval: '0s' },
    nodes: {
      cn1: {
        role: 'cn',
        host: '127.0.0.1',
        metrics: metrics.cn1,
        failover: {
          mode: 'standby',
          standby: 'cn1s',
          ip: { method: 'manual' },
          nodekeyBackup: { host: 'cn1s', path: '/var/cellops/backup/cn1.nodekey' },
        },
      },
      cn1s: { role: 'standby', host: '127.0.0.2', metrics: metrics.cn1s },
      pn1: { role: 'pn', host: '127.0.0.3', metrics: metrics.pn1, dataDir: '/var/kpnd/data' },
    },
  };
  writeFileSync(join(dir, 'cellops.yaml'), stringify(config));
  const port = await freePort();
  const bot = startMain({
    CELLOPS_CONFIG: join(dir, 'cellops.yaml'),
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: deps.slack.apiUrl,
    REDIS_URL: deps.redis.url,
    PORT: String(port),
    LOG_LEVEL: 'info',
  });
  await waitHttp(`http://127.0.0.1:${port}/healthz`, 30_000);
  return { bot, port };
}

describe('cellops started as a process', () => {
  let redis: RedisServer;
  let slack: SlackStandIn;
  let nodes: StandIns;
  let bot: Bot;
  let port: number;
  let height = 5_000;
  const ticker = setInterval(() => (height += 1), 250);

  beforeAll(async () => {
    redis = await startRedis();
    slack = await startSlackStandIn();
    nodes = await startStandIns(() => height);
    for (const name of ['cn1', 'cn1s', 'pn1']) nodes.add(name);
    ({ bot, port } = await startCellBot(
      'e2e-cell',
      { cn1: nodes.node('cn1').url, cn1s: nodes.node('cn1s').url, pn1: nodes.node('pn1').url },
      { slack, redis },
    ));
  }, 60_000);

  afterAll(async () => {
    clearInterval(ticker);
    bot?.child.kill('SIGTERM');
    await bot?.exited;
    await nodes?.close();
    await slack?.close();
    await redis?.stop();
  });

  it('serves /livez, /readyz and /healthz with Redis and Slack auth checked, and /metrics', async () => {
    for (const path of ['/healthz', '/readyz', '/livez'])
      expect((await fetch(`http://127.0.0.1:${port}${path}`)).status, path).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()).toEqual({
      ok: true,
      redis: 'ok',
      slack: 'ok',
    });
    expect(slack.callsOf('auth.test').length).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^cellops_runs\{state="running"\} 0$/m);
    expect(metrics).toMatch(/^# TYPE cellops_run_duration_seconds histogram$/m);
    // prom-client's default process metrics.
    expect(metrics).toMatch(/^process_cpu_seconds_total /m);
    expect(metrics).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('answers a signed /cell status and refuses a forged one with 401', async () => {
    const body = slashCommandBody({
      command: '/cell',
      text: 'status',
      user: 'U0CCC',
      responseUrl: slack.responseUrl('status'),
    });
    const ok = await postSigned(`http://127.0.0.1:${port}/slack/events`, body, { secret: SECRET });
    expect(ok.status).toBe(200);
    const reply = await slack.waitFor(
      'the status reply',
      () => slack.responses.find((r) => r.id === 'status'),
      15_000,
    );
    expect(JSON.stringify(reply.body)).toContain('cn1');

    const forged = await postSigned(`http://127.0.0.1:${port}/slack/events`, body, {
      secret: 'wrong-secret',
    });
    expect(forged.status).toBe(401);
    const stale = await postSigned(`http://127.0.0.1:${port}/slack/events`, body, {
      secret: SECRET,
      timestamp: Math.floor(Date.now() / 1000) - 600,
    });
    expect(stale.status).toBe(401);
  });

  it('answers an unknown node with the usage, and nothing runs', async () => {
    const body = slashCommandBody({
      command: '/failover',
      text: 'cn9',
      user: 'U0CCC',
      responseUrl: slack.responseUrl('cn9'),
    });
    expect((await postSigned(`http://127.0.0.1:${port}/slack/events`, body, { secret: SECRET })).status).toBe(
      200,
    );
    const reply = await slack.waitFor(
      'the refusal',
      () => slack.responses.find((r) => r.id === 'cn9'),
      15_000,
    );
    expect(reply.body.response_type).toBe('ephemeral');
    expect(JSON.stringify(reply.body)).toMatch(/cn9/);
    expect(
      slack.callsOf('chat.postMessage').filter((c) => JSON.stringify(c.args).includes('failover cn9')),
    ).toEqual([]);
  });

  it('opens an alert in the channel when cn1 stalls, with Start failover, Mute and Acknowledge', async () => {
    await nodes.node('cn1').stall();
    const alert = await slack.waitFor(
      'the stall alert',
      () =>
        slack
          .callsOf('chat.postMessage')
          .find((c) => c.args.channel === 'C0ALERTS' && JSON.stringify(c.args).includes('alert:failover')),
      30_000,
    );
    const text = JSON.stringify(alert.args);
    expect(text).toContain('cn1');
    expect(text).toContain('alert:mute');
    expect(text).toContain('alert:ack');
    expect(alert.token).toBe(TOKEN);
    expect(bot.output()).not.toContain(TOKEN);
  });
});

/** Slack drops a slash command or interaction not acknowledged within 3 s: the contract, not a benchmark. */
const SLACK_ACK_MS = 3_000;

describe('cellops probing nodes whose metrics are hostile', () => {
  let redis: RedisServer;
  let slack: SlackStandIn;
  let nodes: StandIns;
  let hostile: HostileMetrics;
  let bot: Bot;
  let port: number;

  beforeAll(async () => {
    redis = await startRedis();
    slack = await startSlackStandIn();
    // A chain making a block a second: pn1 must read as healthy however long the test takes, not stalled.
    const chainStart = Date.now();
    nodes = await startStandIns(() => 5_000 + Math.floor((Date.now() - chainStart) / 1_000));
    nodes.add('pn1');
    hostile = await startHostileMetrics();
    // cn1 serves a head value of 10 MB of digits, cn1s a 16 MiB body.
    ({ bot, port } = await startCellBot(
      'e2e-hostile',
      { cn1: hostile.url('digits'), cn1s: hostile.url('huge'), pn1: nodes.node('pn1').url },
      { slack, redis },
    ));
  }, 60_000);

  afterAll(async () => {
    bot?.child.kill('SIGTERM');
    await bot?.exited;
    await hostile?.close();
    await nodes?.close();
    await slack?.close();
    await redis?.stop();
  });

  it('acknowledges every /cell status within 3 s while the monitor probes them, and still answers', async () => {
    // The monitor has started on both hostile endpoints before the clock of this test starts.
    await slack.waitFor(
      'the monitor probing both hostile endpoints',
      () => (hostile.served('digits') > 0 && hostile.served('huge') > 0 ? true : undefined),
      15_000,
    );
    const probedBefore = hostile.served('digits') + hostile.served('huge');
    const acks: number[] = [];
    for (let i = 0; i < 8; i++) {
      const body = slashCommandBody({
        command: '/cell',
        text: 'status',
        user: 'U0CCC',
        responseUrl: slack.responseUrl(`hostile-status-${i}`),
      });
      const started = performance.now();
      const response = await postSigned(`http://127.0.0.1:${port}/slack/events`, body, { secret: SECRET });
      acks.push(performance.now() - started);
      expect(response.status, `ack ${i}`).toBe(200);
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(Math.max(...acks), `acks took ${acks.map((ms) => Math.round(ms)).join(', ')} ms`).toBeLessThan(
      SLACK_ACK_MS,
    );
    // The commands overlapped with probes of both hostile endpoints (the monitor's and status's own).
    expect(hostile.served('digits') + hostile.served('huge')).toBeGreaterThan(probedBefore);

    const reply = await slack.waitFor(
      'the last status reply',
      () => slack.responses.find((r) => r.id === 'hostile-status-7'),
      20_000,
    );
    const text = JSON.stringify(reply.body);
    expect(text).toContain('cn1');
    expect(text).toContain('pn1');
    // Both hostile nodes read as down (their answers too large to read), the healthy PN as healthy.
    expect(text).toMatch(/cn1 +cn +down/);
    expect(text).toMatch(/cn1s +standby +down/);
    expect(text).toMatch(/pn1 +pn +healthy/);
    // Neither the run of digits nor the body reached Slack.
    expect(text).not.toMatch(/9{64}/);
    expect(text.length).toBeLessThan(40_000);
    // Every read of them stopped early: no body was taken to its end.
    expect(hostile.completed).toBe(0);
  }, 90_000);
});

/** Starts the bot on a configuration it must refuse (Redis unreachable: it must not get that far). */
async function startWithBrokenConfig(
  prefix: string,
  yaml: string,
): Promise<{ file: string; bot: ReturnType<typeof startMain> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = join(dir, 'cellops.yaml');
  writeFileSync(file, yaml);
  const bot = startMain({
    CELLOPS_CONFIG: file,
    SLACK_BOT_TOKEN: TOKEN,
    SLACK_SIGNING_SECRET: SECRET,
    PORT: String(await freePort()),
    REDIS_URL: 'redis://127.0.0.1:1',
  });
  return { file, bot };
}

describe('cellops with a broken configuration', () => {
  it('names the file, the key and the problem, and does not start', async () => {
    const { file, bot } = await startWithBrokenConfig(
      'cellops-badcfg-',
      'cell: x\nslack: { channel: C0X, approvers: {} }\nssh: { user: ops, privateKey: /k, knownHosts: /h }\nnodes:\n  cn1: { role: cn, host: 10.0.0.1, failover: { mode: standby, standby: cn9, ip: { method: manual }, nodekeyBackup: { host: cn1, path: /b } } }\n  pn1: { role: pn, host: 10.0.0.2 }\n',
    );
    expect(await bot.exited).toBe(1);
    expect(bot.output()).toContain(
      `${file}: nodes.cn1.failover.standby: "cn9" is not a node (known: cn1, pn1)`,
    );
    expect(bot.output()).not.toContain(TOKEN);
  });
});

describe('cellops with a pager whose secret is not set', () => {
  it('names the variable and does not start', async () => {
    const { bot } = await startWithBrokenConfig(
      'cellops-pager-',
      'cell: x\nslack: { channel: C0X, approvers: { users: [U0A] } }\nssh: { user: ops, privateKey: /k, knownHosts: /h }\nnodes:\n  pn1: { role: pn, host: 10.0.0.2 }\nescalation:\n  pagerduty: { routingKeyEnv: CELLOPS_TEST_PD_KEY }\n',
    );
    expect(await bot.exited).toBe(1);
    expect(bot.output()).toContain('CELLOPS_TEST_PD_KEY: is not set');
    expect(bot.output()).toContain('cellops did not start');
    expect(bot.output()).not.toContain(TOKEN);
  });
});
