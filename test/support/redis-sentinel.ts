/**
 * A Redis Sentinel group on loopback for the high-availability tests: a primary and a replica
 * (`appendonly yes`) and three real `redis-sentinel` processes, each with its config file in a temp
 * folder. Timeouts are short (down after 1 s, failover timeout 3 s) and the sentinels are told about each
 * other and about the replica up front, so that the group is ready in a second rather than after the
 * 10-second discovery rounds. Optionally the servers have a password and the sentinels another one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedisClient } from '../../src/infra/redis-client.js';
import { freePort } from './free-port.js';
import { closeRedis } from './redis-client.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { requireBinary } from './require-binary.js';
import { until } from './until.js';

export const MASTER_NAME = 'cellops-test';

export interface SentinelGroupOptions {
  /** `requirepass` on the primary and replica (`masterauth` too, and `sentinel auth-pass`). */
  readonly serverPassword?: string;
  /** `requirepass` on the sentinels (and `sentinel sentinel-pass`, so that they talk to each other). */
  readonly sentinelPassword?: string;
}

export interface SentinelGroup {
  /** The two data servers, in the order started: [primary at the start, replica at the start]. */
  readonly servers: readonly RedisServer[];
  readonly sentinelPorts: readonly number[];
  /** `redis+sentinel://[:password@]127.0.0.1:p1,…/<MASTER_NAME>` */
  readonly url: string;
  /** The environment the client needs besides the URL (REDIS_SENTINEL_PASSWORD). */
  readonly env: { readonly REDIS_SENTINEL_PASSWORD?: string };
  /** The port of the primary as every sentinel reports it, once they all agree and it says it is primary. */
  primaryPort(): Promise<number>;
  /** The data server at `port`. */
  server(port: number): RedisServer;
  /** A direct client to one sentinel (for SENTINEL commands). */
  sentinel(index: number): Redis;
  stop(): Promise<void>;
}

function sentinelConfig(options: {
  port: number;
  dir: string;
  myid: string;
  primaryPort: number;
  replicaPort: number;
  others: readonly { port: number; myid: string }[];
  group: SentinelGroupOptions;
}): string {
  const { group } = options;
  return [
    `port ${options.port}`,
    'bind 127.0.0.1',
    'daemonize no',
    `dir ${options.dir}`,
    `logfile ${join(options.dir, 'sentinel.log')}`,
    `sentinel myid ${options.myid}`,
    `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${options.primaryPort} 2`,
    `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
    `sentinel failover-timeout ${MASTER_NAME} 3000`,
    `sentinel parallel-syncs ${MASTER_NAME} 1`,
    `sentinel known-replica ${MASTER_NAME} 127.0.0.1 ${options.replicaPort}`,
    ...options.others.map((o) => `sentinel known-sentinel ${MASTER_NAME} 127.0.0.1 ${o.port} ${o.myid}`),
    ...(group.serverPassword === undefined
      ? []
      : [`sentinel auth-pass ${MASTER_NAME} ${group.serverPassword}`]),
    ...(group.sentinelPassword === undefined
      ? []
      : [`requirepass ${group.sentinelPassword}`, `sentinel sentinel-pass ${group.sentinelPassword}`]),
    '',
  ].join('\n');
}

/** Field → value of one SENTINEL MASTER reply (a flat list). */
function fields(reply: unknown): Map<string, string> {
  const list = Array.isArray(reply) ? reply.map(String) : [];
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) map.set(list[i] ?? '', list[i + 1] ?? '');
  return map;
}

export async function startSentinelGroup(group: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const binary = requireBinary('redis-sentinel', 'apt-get install -y redis-sentinel');
  const serverOptions = {
    appendonly: true,
    ...(group.serverPassword === undefined ? {} : { password: group.serverPassword }),
  };
  const primary = await startRedis(serverOptions);
  const replica = await startRedis({ ...serverOptions, replicaOf: primary.port });
  const servers = [primary, replica];
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  const clients: Redis[] = [];
  const env = group.sentinelPassword === undefined ? {} : { REDIS_SENTINEL_PASSWORD: group.sentinelPassword };

  const nodes: { port: number; myid: string }[] = [];
  for (let i = 0; i < 3; i++) nodes.push({ port: await freePort(), myid: randomBytes(20).toString('hex') });
  for (const node of nodes) {
    const dir = mkdtempSync(join(tmpdir(), 'cellops-sentinel-'));
    dirs.push(dir);
    const file = join(dir, 'sentinel.conf');
    writeFileSync(
      file,
      sentinelConfig({
        ...node,
        dir,
        primaryPort: primary.port,
        replicaPort: replica.port,
        others: nodes.filter((other) => other !== node),
        group,
      }),
    );
    children.push(spawn(binary, [file], { stdio: 'ignore' }));
  }

  const sentinel = (index: number): Redis => {
    const existing = clients[index];
    if (existing) return existing;
    const auth = group.sentinelPassword === undefined ? '' : `:${group.sentinelPassword}@`;
    const client = createRedisClient(
      `redis://${auth}127.0.0.1:${nodes[index]?.port ?? 0}`,
      {},
      { overrides: { maxRetriesPerRequest: 1, retryStrategy: () => 50 } },
    );
    clients[index] = client;
    return client;
  };

  const primaryPort = () =>
    until(
      'all sentinels to agree on a primary that says it is one',
      async () => {
        const ports = new Set<number>();
        for (let i = 0; i < nodes.length; i++) {
          const reply = await sentinel(i).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME);
          ports.add(Number((reply as string[])[1]));
        }
        const [port] = [...ports];
        if (ports.size !== 1 || port === undefined) return undefined;
        const role = await sentinel(0).call('SENTINEL', 'MASTER', MASTER_NAME);
        return fields(role).get('flags') === 'master' ? port : undefined;
      },
      { timeoutMs: 30_000, everyMs: 50, ignoreErrors: true },
    );

  const stop = async (): Promise<void> => {
    for (const client of clients) await closeRedis(client);
    for (const child of children) {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        });
      }
    }
    for (const server of servers) await server.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };

  try {
    // Ready: each sentinel knows the other two and the replica, and sees the replica's link up.
    await until(
      'the sentinels to know each other and the replica',
      async () => {
        for (let i = 0; i < nodes.length; i++) {
          const master = fields(await sentinel(i).call('SENTINEL', 'MASTER', MASTER_NAME));
          if (master.get('num-other-sentinels') !== '2' || master.get('num-slaves') !== '1') return false;
          const replicas = (await sentinel(i).call('SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[];
          const link = fields(replicas[0]).get('master-link-status');
          if (link !== 'ok' || (await sentinel(i).call('SENTINEL', 'CKQUORUM', MASTER_NAME)) === null)
            return false;
        }
        return true;
      },
      { timeoutMs: 30_000, everyMs: 50, ignoreErrors: true },
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const auth = group.serverPassword === undefined ? '' : `:${encodeURIComponent(group.serverPassword)}@`;
  return {
    servers,
    sentinelPorts: nodes.map((n) => n.port),
    url: `redis+sentinel://${auth}${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}/${MASTER_NAME}`,
    env,
    primaryPort,
    server: (port) => {
      const found = servers.find((s) => s.port === port);
      if (!found) throw new Error(`no redis-server of this group on port ${port}`);
      return found;
    },
    sentinel,
    stop,
  };
}
