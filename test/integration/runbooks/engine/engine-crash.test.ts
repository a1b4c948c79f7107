/**
 * Crash recovery with real processes: a bot process driving a run is SIGKILLed between steps and in the
 * middle of steps, and a fresh process resumes the run each time. Every step's side effect (a Redis INCR)
 * must happen exactly once, and the destructive step that was in flight must be approved again, in a new
 * round, rather than re-run blind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../../src/runbooks/types.js';
import { RecordingLogger } from '../../../fakes/recording-logger.js';
import { APPROVER_A, APPROVER_B } from '../../../support/bot-fixtures.js';
import { uniquePrefix } from '../../../support/redis-client.js';
import { crashSteps, createRedisEngine, type RedisEngineSetup } from '../../../support/redis-engine.js';
import { startRedis, type RedisServer } from '../../../support/redis-server.js';

const CHILD = fileURLToPath(new URL('../../../support/crash-child.ts', import.meta.url));

let server: RedisServer;
const children: ChildProcess[] = [];
let replica: RedisEngineSetup | undefined;

beforeAll(async () => {
  server = await startRedis();
});
afterEach(async () => {
  for (const child of children.splice(0)) await kill(child);
  await replica?.close();
  replica = undefined;
});
afterAll(async () => {
  await server.stop();
});

interface Child {
  readonly process: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
}

function spawnBot(prefix: string, owner: string, mode: 'start' | 'recover'): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, REDIS_URL: server.url, PREFIX: prefix, OWNER: owner, MODE: mode },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return { process: child, stdout: () => out, stderr: () => err };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Polls until `check` returns a value (not undefined), or fails naming what it waited for. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  children: Child[] = [],
): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await delay(50);
  }
  const logs = children.map((c) => c.stderr()).join('\n');
  throw new Error(`timed out waiting for ${what}${logs ? `\nchild stderr:\n${logs}` : ''}`);
}

describe('engine crash recovery (real processes, real Redis)', () => {
  it('resumes after SIGKILL between and in the middle of steps; each side effect happens once', async () => {
    const prefix = uniquePrefix('engine-crash');
    replica = createRedisEngine({
      url: server.url,
      prefix,
      ownerId: 'test-replica',
      steps: (redis) => crashSteps(redis, prefix),
      logger: new RecordingLogger(),
      engineOptions: { lockTtlMs: 1_500, ownerLeaseMs: 1_500, pollMs: 200 },
    });
    const { engine, store, counter, redis } = replica;
    const load = async (id: string): Promise<RunRecord> => {
      const run = await store.loadRun(id);
      if (!run) throw new Error(`no run ${id}`);
      return run;
    };
    const stepOf = (run: RunRecord, id: string) => run.steps.find((s) => s.id === id);
    const drivenBy = async (id: string, owner: string) =>
      (await load(id)).owner === owner && (await store.ownerOf(id)) === owner ? true : undefined;

    // Bot A starts the run; it waits for approval of the destructive step: killed between steps.
    const a = spawnBot(prefix, 'bot-a', 'start');
    const runId = await eventually('the run id', async () => /"runId":"([^"]+)"/.exec(a.stdout())?.[1], [a]);
    await eventually(
      'approval of fence, round 1',
      async () => {
        const run = await load(runId);
        return run.status === 'waiting-approval' && stepOf(run, 'fence')?.approvalRound === 1
          ? true
          : undefined;
      },
      [a],
    );
    expect(await counter.get('prepare')).toBe(1);
    await kill(a.process);

    // Bot B resumes and keeps waiting in the same round; the approval (given on another replica) starts
    // fence, which is killed in flight before its side effect.
    const b = spawnBot(prefix, 'bot-b', 'recover');
    await eventually('bot B driving', () => drivenBy(runId, 'bot-b'), [b]);
    expect(stepOf(await load(runId), 'fence')).toMatchObject({
      status: 'waiting-approval',
      approvalRound: 1,
    });
    expect(await engine.decide(runId, 'fence', APPROVER_A, 'approve', 1)).toMatchObject({ kind: 'recorded' });
    await eventually(
      'fence in flight',
      async () => ((await redis.exists(`${prefix}armed:fence`)) ? true : undefined),
      [b],
    );
    await kill(b.process);
    expect(await counter.get('fence')).toBe(0);

    // Bot C must not re-run fence blind: it asks again in round 2. Once approved, fence acts, then slow
    // acts and is killed after its side effect.
    const c = spawnBot(prefix, 'bot-c', 'recover');
    await eventually(
      'fence asked again in round 2',
      async () => {
        const run = await load(runId);
        return run.owner === 'bot-c' &&
          stepOf(run, 'fence')?.approvalRound === 2 &&
          run.status === 'waiting-approval'
          ? true
          : undefined;
      },
      [c],
    );
    expect(await counter.get('fence')).toBe(0);
    expect(await engine.decide(runId, 'fence', APPROVER_B, 'approve', 1)).toMatchObject({
      kind: 'not-waiting',
    });
    expect(await engine.decide(runId, 'fence', APPROVER_B, 'approve', 2)).toMatchObject({ kind: 'recorded' });
    await eventually('slow acted', async () => ((await counter.get('slow')) === 1 ? true : undefined), [c]);
    await eventually(
      'slow held',
      async () => ((await redis.exists(`${prefix}armed:slow`)) ? true : undefined),
      [c],
    );
    await kill(c.process);

    // Bot D finds slow's check holding (done, not run again), then late is killed before its side effect.
    const d = spawnBot(prefix, 'bot-d', 'recover');
    await eventually(
      'late in flight',
      async () => ((await redis.exists(`${prefix}armed:late`)) ? true : undefined),
      [d],
    );
    await kill(d.process);
    expect(await counter.get('late')).toBe(0);

    // Bot E runs late again (not destructive, its check does not hold) and finishes the run.
    const e = spawnBot(prefix, 'bot-e', 'recover');
    const done = await eventually(
      'the run to succeed',
      async () => {
        const run = await load(runId);
        return run.status === 'succeeded' ? run : undefined;
      },
      [e],
    );

    for (const id of ['prepare', 'fence', 'slow', 'late', 'finish']) expect(await counter.get(id)).toBe(1);
    expect(stepOf(done, 'fence')?.approvals.map((x) => x.user)).toEqual([APPROVER_B]);
    expect(stepOf(done, 'slow')?.output).toContain(
      'its check holds after the interruption: done, not run again',
    );
    expect(done.fencingToken).toBe(5);

    const audit = await store.readAudit(runId);
    const started = (step: string) =>
      audit.filter((x) => x.what === 'step-started' && x.stepId === step).length;
    expect([
      started('prepare'),
      started('fence'),
      started('slow'),
      started('late'),
      started('finish'),
    ]).toEqual([1, 2, 1, 2, 1]);
    expect(audit.filter((x) => x.what === 'approval-requested').map((x) => x.detail)).toEqual([
      expect.stringContaining('round 1'),
      expect.stringContaining('round 2'),
    ]);
    expect(audit.filter((x) => x.what === 'run-recovered').map((x) => x.who)).toEqual([
      'engine:bot-b',
      'engine:bot-c',
      'engine:bot-d',
      'engine:bot-e',
    ]);
    expect(await store.activeRunIds()).toEqual([]);
  });
});
