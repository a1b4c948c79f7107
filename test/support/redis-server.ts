/**
 * A throwaway redis-server on a free loopback port, started from the system's binary, its files in a temp
 * folder removed by `stop()`. `restart()` stops and starts it on the same port (for the "Redis restarted"
 * cases). Optionally a replica of another one, and password-protected (`requirepass`, and `masterauth`
 * with the same password, as a Sentinel group with one password expects).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createRedisClient } from '../../src/infra/redis-client.js';
import { freePort } from './free-port.js';
import { requireBinary } from './require-binary.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL: as abrupt as a crash). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty unless `appendonly` was set. */
  start(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  readonly appendonly?: boolean;
  /** Starts as a replica of the redis-server on this loopback port. */
  readonly replicaOf?: number;
  readonly password?: string;
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = requireBinary('redis-server', 'apt-get install -y redis-server');
  const port = await freePort();
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  const url = `redis://${auth}127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'cellops-redis-'));
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        options.appendonly ? 'yes' : 'no',
        '--appendfsync',
        'always',
        '--dir',
        dir,
        '--protected-mode',
        'yes',
        ...(options.replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(options.replicaOf)]),
        ...(options.password === undefined
          ? []
          : ['--requirepass', options.password, '--masterauth', options.password]),
      ],
      { stdio: 'ignore' },
    );
    for (let attempt = 0; attempt < 200; attempt++) {
      const probe = createRedisClient(
        url,
        {},
        { overrides: { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null } },
      );
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        await delay(25);
      }
    }
    throw new Error(`redis-server did not start on 127.0.0.1:${port}`);
  };

  const kill = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGKILL');
    });
  };

  await start();
  return {
    url,
    port,
    kill,
    start,
    restart: async () => {
      await kill();
      await start();
    },
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
