/**
 * The whole bot minus Slack, wired to the test lab: the engine on a real Redis (run store, lock, cell
 * state), the registry's runbooks, the ssh2 Shell and the NodeRpc adapter against the lab's real sshd and
 * node stand-ins, and the simulated EC2 for the Cloud port (the lab has no EC2) unless a test passes one
 * (the snapshot tests pass the EC2 adapter aimed at test/support/ec2-endpoint.ts). Approvals are given
 * through `engine.decide` by an approver other than the requester, from a recording RunObserver.
 *
 * Used by test/integration/lab/failover-standby.test.ts and bench/failover.bench.ts. The Shell, NodeRpc and
 * the runbooks' Clock are wrapped to time every command, call and wait, so the benchmark can tell the time
 * spent on hosts from the engine's own.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { createNodeRpc } from '../../src/adapters/rpc/node-rpc.js';
import { withHostHelper } from '../../src/adapters/ssh/cell-shell.js';
import { createSshShell } from '../../src/adapters/ssh/ssh-shell.js';
import { resolveConfig, type CellopsConfig } from '../../src/config/config.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/infra/logger.js';
import { createRedisCellState } from '../../src/infra/redis-cell-state.js';
import { createRedisKeys, type RedisKeys } from '../../src/infra/redis-keys.js';
import { createSystemClock } from '../../src/infra/system-clock.js';
import { createRedisLock } from '../../src/locks/redis-lock.js';
import type { Clock } from '../../src/ports/clock.js';
import type { Logger } from '../../src/ports/logger.js';
import type { NodeRpc } from '../../src/ports/node-rpc.js';
import type { ExecOptions, HostRef, Shell } from '../../src/ports/shell.js';
import type { ShellCommand } from '../../src/ports/shell-command.js';
import { createApprovalPolicy } from '../../src/runbooks/approval-policy.js';
import { createEngine } from '../../src/runbooks/engine/engine.js';
import { createRedisRunStore } from '../../src/runbooks/engine/redis-run-store.js';
import { createRunbooks } from '../../src/runbooks/registry.js';
import { FINISHED_STATUSES, type RunStore } from '../../src/runbooks/engine/run-store.js';
import type {
  AnyRunbook,
  DecisionOutcome,
  Engine,
  RunEvent,
  RunObserver,
  RunRecord,
} from '../../src/runbooks/types.js';
import type { Cloud } from '../../src/ports/cloud.js';
import { createSimCloud } from '../../src/sandbox/sim-cloud.js';
import { labBackupPath, labConfig, type LabConfigObject } from '../lab/lab-config.js';
import type { Lab } from '../lab/lab.js';
import { closeRedis, testRedis } from './redis-client.js';

/** labConfig's users: the requester is an operator, the approver someone else (four-eyes is on). */
export const REQUESTER = 'U0OPERATOR';
export const APPROVER = 'U0APPROVER1';

/** One interval of time spent waiting on something outside the engine. */
export interface BusyInterval {
  readonly kind: 'ssh' | 'rpc' | 'sleep';
  /** performance.now() at start and end. */
  readonly start: number;
  readonly end: number;
}

/** One command the engine ran over SSH, as sent (stdin kept only in memory, for the benchmark's replay). */
export interface RecordedCommand {
  readonly host: HostRef;
  readonly command: ShellCommand;
  readonly stdin?: string;
  readonly exitCode?: number;
  /** The error message when the command could not be run at all (unreachable, host key refused…). */
  readonly failed?: string;
  readonly start: number;
  readonly end: number;
}

/** Times everything the runbooks wait on; `busyMs` is the union of the intervals (overlaps count once). */
export class BusyMeter {
  readonly intervals: BusyInterval[] = [];
  readonly commands: RecordedCommand[] = [];

  async time<T>(kind: BusyInterval['kind'], fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.intervals.push({ kind, start, end: performance.now() });
    }
  }

  /** Milliseconds during which at least one interval (of `kinds`) was open, within [from, to]. */
  busyMs(from = -Infinity, to = Infinity, kinds?: readonly BusyInterval['kind'][]): number {
    const clipped = this.intervals
      .filter((i) => kinds === undefined || kinds.includes(i.kind))
      .map((i) => ({ start: Math.max(i.start, from), end: Math.min(i.end, to) }))
      .filter((i) => i.end > i.start)
      .sort((a, b) => a.start - b.start);
    let total = 0;
    let openStart = -Infinity;
    let openEnd = -Infinity;
    for (const i of clipped) {
      if (i.start > openEnd) {
        if (openEnd > openStart) total += openEnd - openStart;
        openStart = i.start;
        openEnd = i.end;
      } else openEnd = Math.max(openEnd, i.end);
    }
    if (openEnd > openStart) total += openEnd - openStart;
    return total;
  }

  reset(): void {
    this.intervals.length = 0;
    this.commands.length = 0;
  }
}

function stdinText(options: ExecOptions | undefined): string | undefined {
  const stdin = options?.stdin;
  if (stdin === undefined) return undefined;
  return typeof stdin === 'string' ? stdin : Buffer.from(stdin).toString('utf8');
}

export function timedShell(shell: Shell, meter: BusyMeter): Shell {
  return {
    async exec(host, command, options) {
      const start = performance.now();
      const stdin = stdinText(options);
      try {
        const result = await meter.time('ssh', () => shell.exec(host, command, options));
        meter.commands.push({
          host,
          command,
          ...(stdin === undefined ? {} : { stdin }),
          exitCode: result.exitCode,
          start,
          end: performance.now(),
        });
        return result;
      } catch (error) {
        meter.commands.push({
          host,
          command,
          ...(stdin === undefined ? {} : { stdin }),
          failed: error instanceof Error ? error.message : String(error),
          start,
          end: performance.now(),
        });
        throw error;
      }
    },
    ...(shell.knownHostKeys === undefined
      ? {}
      : { knownHostKeys: (address: string) => shell.knownHostKeys!(address) }),
    close: () => shell.close(),
  };
}

export function timedRpc(rpc: NodeRpc, meter: BusyMeter): NodeRpc {
  return {
    health: (node, options) => meter.time('rpc', () => rpc.health(node, options)),
    nodeAddress: (node, options) => meter.time('rpc', () => rpc.nodeAddress(node, options)),
    recentBlocks: (node, count, options) => meter.time('rpc', () => rpc.recentBlocks(node, count, options)),
  };
}

/** The runbooks' clock: their sleeps are waits on the nodes (polling for sync), not engine work. */
export function timedClock(clock: Clock, meter: BusyMeter): Clock {
  return {
    now: () => clock.now(),
    sleep: (ms, signal) => meter.time('sleep', () => clock.sleep(ms, signal)),
  };
}

/** A pino logger writing into memory, to grep what the bot would have logged. */
export function captureLog(): { logger: Logger; text(): string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: createLogger({ destination, level: 'debug' }), text: () => chunks.join('') };
}

export interface ApprovalRequest {
  readonly run: RunRecord;
  readonly stepId: string;
  readonly round: number;
  /** Approves as APPROVER (not the requester). */
  approve(): Promise<DecisionOutcome>;
  abort(): Promise<DecisionOutcome>;
}

export interface RecordedEvent {
  readonly run: RunRecord;
  readonly event: RunEvent;
  /** performance.now() when the observer got it. */
  readonly at: number;
}

export interface LabFailover {
  readonly config: CellopsConfig;
  readonly engine: Engine;
  readonly store: RunStore;
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly meter: BusyMeter;
  /** Every event the engine told its observer, in order. */
  readonly events: RecordedEvent[];
  /** Errors of approval handlers (a test fails on them). */
  readonly errors: unknown[];
  /** Everything the engine, runbooks and adapters logged (pino JSON lines). */
  logText(): string;
  /** Starts a runbook as REQUESTER. */
  start(runbook: string, params: unknown): Promise<RunRecord>;
  /** Resolves with the record once the run finished (succeeded, failed or aborted). */
  finished(runId: string, timeoutMs?: number): Promise<RunRecord>;
  /** The raw JSON of the run record as Redis holds it. */
  rawRunRecord(runId: string): Promise<string>;
  /** The run's audit stream, raw, as Redis holds it. */
  rawAudit(runId: string): Promise<string>;
  close(): Promise<void>;
}

export interface LabFailoverOptions {
  readonly lab: Lab;
  readonly redisUrl: string;
  /** Unique per test. */
  readonly prefix: string;
  readonly overrides?: LabConfigObject;
  /**
   * Applied to the resolved configuration, after the schema checked it: lab hosts share one filesystem,
   * so a path that must be a device node on a real host (a volume's /dev/sdf) lives under the host's root
   * in the lab, which the schema rightly refuses.
   */
  readonly adjust?: (config: CellopsConfig) => CellopsConfig;
  /** Called for every approval request; default: approve at once. */
  readonly onApproval?: (request: ApprovalRequest) => Promise<void>;
  /** Default: a captured pino logger (see logText). */
  readonly logger?: Logger;
  /** The Cloud port; default the simulated EC2 (the lab has no EC2). The snapshot tests pass the EC2 adapter. */
  readonly cloud?: Cloud;
  /** Default the registry's (createRunbooks). */
  readonly runbooks?: AnyRunbook[];
}

export function startLabFailover(options: LabFailoverOptions): LabFailover {
  const { lab, prefix } = options;
  const raw = labConfig(lab, { redis: { prefix }, ...options.overrides });
  const parsed = resolveConfig(configSchema.parse(raw));
  const config = options.adjust ? options.adjust(parsed) : parsed;
  const captured = captureLog();
  const logger = options.logger ?? captured.logger;
  const redis = testRedis(options.redisUrl);
  const keys = createRedisKeys(prefix);
  const clock = createSystemClock();
  const meter = new BusyMeter();
  // The meter records what reaches the hosts: with the lab's host helper, its verbs and fencing tokens.
  const shell = withHostHelper(timedShell(createSshShell({ ssh: config.ssh, logger }), meter), config.ssh);
  const rpc = timedRpc(createNodeRpc({ shell, attachCommand: config.ssh.attachCommand, logger }), meter);
  const store = createRedisRunStore({ redis, keys, logger });
  const events: RecordedEvent[] = [];
  const errors: unknown[] = [];
  const waiters = new Map<string, ((run: RunRecord) => void)[]>();
  const onApproval =
    options.onApproval ?? ((request: ApprovalRequest) => request.approve().then(() => undefined));

  // The observer is built before the engine it decides on.
  const late: { engine?: Engine } = {};
  const decide = (runId: string, stepId: string, decision: 'approve' | 'abort', round: number) => {
    if (!late.engine) throw new Error('the engine is not built yet');
    return late.engine.decide(runId, stepId, APPROVER, decision, round);
  };
  const observer: RunObserver = {
    async onRunEvent(run, event) {
      events.push({ run, event, at: performance.now() });
      if (event.type === 'approval-requested') {
        const round = run.steps.find((s) => s.id === event.stepId)?.approvalRound ?? 0;
        const request: ApprovalRequest = {
          run,
          stepId: event.stepId,
          round,
          approve: () => decide(run.id, event.stepId, 'approve', round),
          abort: () => decide(run.id, event.stepId, 'abort', round),
        };
        // Not awaited: the engine delivers events one at a time, and a test may hold an approval back.
        void onApproval(request).catch((error: unknown) => errors.push(error));
      }
      if (event.type === 'run-finished') {
        for (const resolve of waiters.get(run.id) ?? []) resolve(run);
        waiters.delete(run.id);
      }
    },
  };

  const engine = createEngine({
    store,
    lock: createRedisLock({ redis, keys, clock, logger }),
    runbooks: options.runbooks ?? createRunbooks(),
    ports: {
      shell,
      rpc,
      cloud: options.cloud ?? createSimCloud({ clock }),
      clock: timedClock(clock, meter),
      state: createRedisCellState({ redis, keys }),
    },
    config,
    policy: createApprovalPolicy({ slack: config.slack, directory: { usergroupMembers: async () => [] } }),
    observer,
    clock,
    logger,
    ownerId: `lab-failover:${process.pid}:${prefix}`,
  });
  late.engine = engine;

  return {
    config,
    engine,
    store,
    redis,
    keys,
    meter,
    events,
    errors,
    logText: captured.text,
    start: (runbook, params) => engine.start({ runbook, params, requester: REQUESTER }),
    async finished(runId, timeoutMs = 120_000) {
      const done = new Promise<RunRecord>((resolve) => {
        const list = waiters.get(runId) ?? [];
        list.push(resolve);
        waiters.set(runId, list);
      });
      // The run may have finished before anyone waited for it.
      const now = await engine.get(runId);
      if (now && FINISHED_STATUSES.includes(now.status)) return now;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`run ${runId} did not finish within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        await Promise.race([done, timeout]);
      } finally {
        clearTimeout(timer);
      }
      const record = await engine.get(runId);
      if (!record) throw new Error(`run ${runId} vanished`);
      return record;
    },
    rawRunRecord: async (runId) => (await redis.get(keys.run(runId))) ?? '',
    rawAudit: async (runId) => JSON.stringify(await redis.xrange(keys.audit(runId), '-', '+')),
    async close() {
      await engine.close();
      await shell.close();
      await closeRedis(redis);
    },
  };
}

/** Writes `content` as cn's nodekey backup on its standby, where labConfig says it is (mode 0600). */
export function writeLabBackup(lab: Lab, cn: string, content: string): void {
  // The lab's hosts share this filesystem; the file is root's, as a backup written with sudo would be.
  const path = labBackupPath(lab, cn);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Makes `cn` a CN to fail over: its height freezes and the chain moves `behind` blocks past it. */
export function makeLagging(lab: Lab, cn: string, behind = 50): void {
  lab.stallNode(cn);
  lab.chain.setHeight(lab.chain.height() + behind);
}
