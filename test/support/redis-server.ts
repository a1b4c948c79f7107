/**
 * A throwaway redis-server on a free loopback port, started from the system's binary. Nothing is kept on
 * disk. `restart()` stops and starts it on the same port (for the "Redis restarted" cases).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
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

export async function startRedis(options: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const binary = requireBinary('redis-server', 'apt-get install -y redis-server');
  const port = await freePort();
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
      ],
      { stdio: 'ignore' },
    );
    for (let attempt = 0; attempt < 200; attempt++) {
      const probe = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => undefined);
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
    url: `redis://127.0.0.1:${port}`,
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
