/**
 * A bot process for the crash test, run as `node --import tsx crash-child.ts` and SIGKILLed by the test.
 * MODE=start starts one run of the crash runbook and prints `{"runId": …}`; MODE=recover calls recover()
 * every 100 ms. Either way it keeps driving until killed.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger } from '../../src/infra/logger.js';
import { OPERATOR } from './bot-fixtures.js';
import { crashSteps, createRedisEngine } from './redis-engine.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`crash-child: ${name} is not set`);
  return value;
};

const prefix = env('PREFIX');
const setup = createRedisEngine({
  url: env('REDIS_URL'),
  prefix,
  ownerId: env('OWNER'),
  steps: (redis) => crashSteps(redis, prefix),
  logger: createLogger({ level: 'warn', destination: process.stderr }),
  engineOptions: { lockTtlMs: 1_500, ownerLeaseMs: 1_500, pollMs: 200 },
});

if (env('MODE') === 'start') {
  const run = await setup.engine.start({ runbook: 'counting', params: { node: 'cn1' }, requester: OPERATOR });
  process.stdout.write(`${JSON.stringify({ runId: run.id })}\n`);
}
for (;;) {
  await setup.engine.recover();
  await delay(100);
}
