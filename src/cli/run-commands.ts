/**
 * `cellops runs`, `cellops audit <run>` and `cellops report <run>`: read-only views of the run store in
 * the Redis at REDIS_URL, under the same key prefix the bot uses (the configuration's `redis.prefix`,
 * default `cellops:<cell>:`), or an explicit `--prefix`. They read through the bot's own RunStore, so the
 * CLI shows exactly what the bot stored, and never write.
 */
import { Redis } from 'ioredis';
import type { CellopsConfig } from '../config/config.js';
import { loadConfigFile } from '../config/load.js';
import { readEnv } from '../config/env.js';
import { CellopsError, describeError } from '../errors.js';
import { createRedisKeys } from '../infra/redis-keys.js';
import { scrubDeep } from '../infra/redact.js';
import { createLogger } from '../infra/logger.js';
import { createSystemClock } from '../infra/system-clock.js';
import { createCellShell } from '../adapters/ssh/cell-shell.js';
import { createNodeRpc } from '../adapters/rpc/node-rpc.js';
import { createReportSource } from '../report/gather-report.js';
import { renderReportMarkdown } from '../report/markdown.js';
import { redactSecrets } from '../infra/redact.js';
import { createRedisRunStore } from '../runbooks/engine/redis-run-store.js';
import type { RunStore } from '../runbooks/engine/run-store.js';
import type { RunRecord } from '../runbooks/types.js';
import type { StoreOptions } from './parse-cli-args.js';

/** A failure the CLI reports as one line on stderr with exit status 1. */
export class CliError extends CellopsError {
  constructor(message: string) {
    super('cli_failed', message);
  }
}

export interface CliOutput {
  out(line: string): void;
}

interface OpenStore {
  readonly store: RunStore;
  readonly prefix: string;
  /** The configuration, when one was read (not with --prefix alone). */
  readonly config?: CellopsConfig;
  close(): Promise<void>;
}

/** The URL without its password, for messages. */
function safeUrl(url: string): string {
  return redactSecrets(url.replace(/\/\/[^@/]*@/, '//***@'));
}

/** The key prefix: --prefix, else the configuration's (which is then returned too). */
async function resolvePrefix(
  options: StoreOptions,
  env: NodeJS.ProcessEnv,
): Promise<{ prefix: string; config?: CellopsConfig }> {
  if (options.prefix !== undefined && options.config === undefined) return { prefix: options.prefix };
  const file = options.config ?? readEnv(env).configPath;
  const config = await loadConfigFile(file);
  return { prefix: options.prefix ?? config.redisPrefix, config };
}

async function openStore(options: StoreOptions, env: NodeJS.ProcessEnv): Promise<OpenStore> {
  const { prefix, config } = await resolvePrefix(options, env);
  const url = readEnv(env).redisUrl;
  // One attempt, then a clear error: a person at a terminal wants an answer, not endless retries.
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5_000,
    commandTimeout: 10_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new CliError(`cannot reach Redis at ${safeUrl(url)} (REDIS_URL): ${describeError(error)}`);
  }
  return {
    store: createRedisRunStore({ redis, keys: createRedisKeys(prefix) }),
    prefix,
    ...(config === undefined ? {} : { config }),
    close: async () => {
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}

async function withStore<T>(
  options: StoreOptions,
  env: NodeJS.ProcessEnv,
  fn: (open: OpenStore) => Promise<T>,
): Promise<T> {
  const open = await openStore(options, env);
  try {
    return await fn(open);
  } finally {
    await open.close();
  }
}

function runLine(run: RunRecord): string {
  const created = new Date(run.createdAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const where = run.currentStep === undefined ? '' : ` at ${run.currentStep}`;
  return [
    run.id.padEnd(12),
    run.status.padEnd(9),
    run.runbook.padEnd(16),
    run.node.padEnd(6),
    run.requester.padEnd(12),
    created,
    `${run.summary}${run.dryRun ? ' (dry run)' : ''}${where}`,
  ].join(' ');
}

/** A record as one JSON line, every string redacted (run records hold step output). */
function jsonLine(value: unknown): string {
  return JSON.stringify(scrubDeep(value));
}

export async function listRuns(
  options: StoreOptions & { readonly limit: number; readonly json: boolean },
  env: NodeJS.ProcessEnv,
  io: CliOutput,
): Promise<number> {
  return withStore(options, env, async ({ store, prefix }) => {
    const runs = await store.listRecent(options.limit);
    if (options.json) {
      for (const run of runs) io.out(jsonLine(run));
      return 0;
    }
    if (runs.length === 0) {
      io.out(`no runs under Redis prefix ${prefix}`);
      return 0;
    }
    for (const run of runs) io.out(redactSecrets(runLine(run)));
    return 0;
  });
}

async function requireRun(store: RunStore, prefix: string, runId: string): Promise<RunRecord> {
  const run = await store.loadRun(runId);
  if (run === undefined) {
    throw new CliError(`no run ${runId} under Redis prefix ${prefix} (list them with: cellops runs)`);
  }
  return run;
}

export async function printAudit(
  options: StoreOptions & { readonly runId: string },
  env: NodeJS.ProcessEnv,
  io: CliOutput,
): Promise<number> {
  return withStore(options, env, async ({ store, prefix }) => {
    const entries = await store.readAudit(options.runId);
    // A run's record may have been deleted while its audit stream is kept: print what there is.
    if (entries.length === 0) await requireRun(store, prefix, options.runId);
    for (const entry of entries) io.out(jsonLine(entry));
    return 0;
  });
}

/**
 * The run's report as Markdown. With a configuration, the blocks the CN missed are read from the PNs it
 * lists (JSON-RPC, else IPC over the bot's SSH settings); with --prefix alone there is no inventory, and
 * the report says so.
 */
export async function printReport(
  options: StoreOptions & { readonly runId: string },
  env: NodeJS.ProcessEnv,
  io: CliOutput,
): Promise<number> {
  return withStore(options, env, async ({ store, prefix, config }) => {
    // Failures to read blocks are reported in the report itself; the log would only repeat them.
    const logger = createLogger({ level: 'silent' });
    const shell = config ? createCellShell({ ssh: config.ssh, logger }) : undefined;
    try {
      const source = createReportSource({
        store,
        clock: createSystemClock(),
        ...(config && shell
          ? {
              chain: {
                config,
                rpc: createNodeRpc({ shell, attachCommand: config.ssh.attachCommand, logger }),
              },
            }
          : { noChainReason: 'no configuration given (--prefix alone), so no PN to read blocks from' }),
      });
      const report = await source.report(options.runId);
      if (report === undefined) await requireRun(store, prefix, options.runId);
      if (report !== undefined) io.out(redactSecrets(renderReportMarkdown(report)));
      return 0;
    } finally {
      await shell?.close();
    }
  });
}
