/**
 * `cellops` as an operator runs it: a separate process, once through tsx from the sources and once as
 * the compiled program behind a bin symlink (as npm installs it), reading a real Redis that holds a run
 * made by the real engine and store, under the key prefix of a configuration file.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../src/runbooks/types.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { OPERATOR } from '../../support/bot-fixtures.js';
import { createRedisEngine, type RedisEngineSetup } from '../../support/redis-engine.js';
import { uniquePrefix } from '../../support/redis-client.js';
import { startRedis, type RedisServer } from '../../support/redis-server.js';
import { until } from '../../support/until.js';
import { runEngineFailover } from '../../support/engine-failover.js';
import { createRedisRunStore } from '../../../src/runbooks/engine/redis-run-store.js';
import { createRedisKeys } from '../../../src/infra/redis-keys.js';
import type { StoredAuditEntry } from '../../../src/runbooks/engine/run-store.js';
import { formatDuration } from '../../../src/config/duration.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const NODEKEY = '5c'.repeat(32);
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function spawnCli(command: string, args: readonly string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The sources through tsx, as `npm run cellops --` does. */
const fromSources = (args: readonly string[], env: Record<string, string>) =>
  spawnCli(
    process.execPath,
    ['--import', join(ROOT, 'node_modules/tsx/dist/esm/index.mjs'), join(ROOT, 'src/cli.ts'), ...args],
    env,
  );

/**
 * The compiled program laid out as npm installs a package: <dir>/package.json, dist/, node_modules/, and
 * <dir>/bin/cellops a symlink to the `bin` entry. Compiled to a temp folder so that the repository's
 * dist/ is left alone.
 */
function buildInstalled(): { dir: string; bin: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cellops-cli-built-'));
  execFileSync(
    process.execPath,
    [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      join(dir, 'dist'),
    ],
    { stdio: 'pipe' },
  );
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin: { cellops: string } };
  mkdirSync(join(dir, 'bin'));
  symlinkSync(join('..', pkg.bin.cellops), join(dir, 'bin', 'cellops'));
  // tsc writes files without the executable bit; npm's bin linking sets it on install, and so does this.
  chmodSync(join(dir, pkg.bin.cellops), 0o755);
  return { dir, bin: join(dir, 'bin', 'cellops') };
}

describe('the cellops CLI process', () => {
  let redis: RedisServer;
  let setup: RedisEngineSetup;
  let run: RunRecord;
  let env: Record<string, string>;
  let prefix: string;
  let installed: { dir: string; bin: string };
  let configDir: string | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    prefix = uniquePrefix('cli');
    setup = createRedisEngine({
      url: redis.url,
      prefix,
      ownerId: 'cli-test',
      steps: () => [{ id: 'prepare' }, { id: 'finish' }],
      logger: new RecordingLogger(),
    });
    const started = await setup.engine.start({
      runbook: 'counting',
      params: { node: 'cn1' },
      requester: OPERATOR,
    });
    run = await until('the run to finish', async () => {
      const saved = await setup.store.loadRun(started.id);
      return saved?.status === 'succeeded' ? saved : undefined;
    });
    // A secret that reached the audit trail unredacted must still not be printed.
    await setup.store.appendAudit(run.id, {
      at: Date.now(),
      who: OPERATOR,
      what: 'note',
      detail: `key ${NODEKEY}`,
    });

    configDir = mkdtempSync(join(tmpdir(), 'cellops-cli-config-'));
    const dir = configDir;
    const config = readFileSync(join(ROOT, 'cellops.example.yaml'), 'utf8').replace(
      "prefix: 'cellops:my-core-cell:'",
      `prefix: '${prefix}'`,
    );
    expect(config).toContain(prefix);
    writeFileSync(join(dir, 'cellops.yaml'), config);
    env = { REDIS_URL: redis.url, CELLOPS_CONFIG: join(dir, 'cellops.yaml') };
    installed = buildInstalled();
    // A full tsc build: seconds on a quiet machine, minutes on a loaded 2-core one.
  }, 300_000);

  afterAll(async () => {
    await setup?.close();
    await redis?.stop();
    if (installed) rmSync(installed.dir, { recursive: true, force: true });
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it('lists the runs under the configuration prefix, as a table and as JSON lines', async () => {
    const table = await fromSources(['runs'], env);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(
      new RegExp(`^${run.id}\\s+succeeded\\s+counting\\s+cn1\\s+${OPERATOR}\\s`, 'm'),
    );

    const json = await fromSources(['runs', '--json', '--limit', '5'], env);
    expect(json.code).toBe(0);
    const [first] = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as RunRecord);
    expect(first).toMatchObject({ id: run.id, status: 'succeeded', runbook: 'counting', node: 'cn1' });

    const other = await fromSources(['runs', '--prefix', 'cellops:nothing-here:'], env);
    expect(other).toMatchObject({ code: 0, stdout: 'no runs under Redis prefix cellops:nothing-here:\n' });
  });

  it("prints a run's audit trail as JSON lines, the secret redacted", async () => {
    const audit = await fromSources(['audit', run.id], env);
    expect(audit).toMatchObject({ code: 0, stderr: '' });
    const entries = audit.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries.length).toBeGreaterThan(2);
    expect(entries.every((e) => e.runId === run.id && typeof e.what === 'string')).toBe(true);
    expect(entries.map((e) => e.what)).toContain('run-started');
    expect(entries.at(-1)).toMatchObject({ what: 'note', detail: 'key [redacted]' });
    expect(audit.stdout).not.toContain(NODEKEY);
  });

  it('fails on stderr with status 1 for an unknown run and an unreachable Redis', async () => {
    const missing = await fromSources(['audit', 'r-nope'], env);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toContain(`no run r-nope under Redis prefix ${prefix}`);

    const report = await fromSources(['report', 'r-nope', '--prefix', prefix], env);
    expect(report).toMatchObject({ code: 1, stdout: '' });
    expect(report.stderr).toContain(`no run r-nope under Redis prefix ${prefix}`);

    const down = await fromSources(['runs'], { ...env, REDIS_URL: 'redis://:hunter2-secret@127.0.0.1:1' });
    expect(down).toMatchObject({ code: 1, stdout: '' });
    expect(down.stderr).toContain('cannot reach Redis at redis://***@127.0.0.1:1');
    expect(down.stderr).not.toContain('hunter2');
  });

  it("prints a failover's report as Markdown, its timeline row by row the audit stream in Redis", async () => {
    const failoverPrefix = uniquePrefix('cli-report');
    const { run: failover } = await runEngineFailover({
      incident: (now) => ({ id: 'cn1-alert', kind: 'down', openedAt: now - 60_000, postedAt: now - 50_000 }),
      store: () => createRedisRunStore({ redis: setup.redis, keys: createRedisKeys(failoverPrefix) }),
    });
    expect(failover.status).toBe('succeeded');
    const audit: StoredAuditEntry[] = await createRedisRunStore({
      redis: setup.redis,
      keys: createRedisKeys(failoverPrefix),
    }).readAudit(failover.id);

    // --prefix alone: no inventory, so no chain is asked (and nothing leaves loopback).
    const printed = await fromSources(['report', failover.id, '--prefix', failoverPrefix], env);
    expect(printed).toMatchObject({ code: 0, stderr: '' });
    const md = printed.stdout;
    expect(md).toContain(`# Report of run ${failover.id}: failover cn1 (standby → cn1s)`);
    const recovered = Number(failover.facts.signedAt) - (failover.incident?.openedAt ?? 0);
    expect(md).toContain(`- Time to recover: ${formatDuration(recovered)} from alert opened (down)`);
    expect(md).toContain('- Blocks missed: unknown: no configuration given');
    expect(md).toContain('nodekey.cellops-r1');

    const rows = md
      .split('\n')
      .filter((line) => /^\| \d\d:\d\d:\d\d \|/.test(line))
      .map((line) => line.split(' | ').map((c) => c.replace(/^\| /, '').trim()));
    const events = audit.filter((e) => e.what !== 'step-output');
    // The alert first, the signing just before Verify's end, every other row one audit entry in order.
    expect(rows[0]?.[2]).toContain("cn1 down: the alert's condition began");
    const fromAudit = rows.filter(
      (r) => !r[2]?.includes("the alert's condition") && !r[2]?.includes('seen signing again'),
    );
    expect(fromAudit).toHaveLength(events.length);
    events.forEach((entry, i) => {
      expect(fromAudit[i]?.[0]).toBe(new Date(entry.at).toISOString().slice(11, 19));
      expect(fromAudit[i]?.[1]).toBe(entry.who.startsWith('engine:') ? 'cellops' : entry.who);
    });
    expect(fromAudit.filter((r) => r[2]?.startsWith('approved')).map((r) => r[1])).toEqual(
      Array(5).fill('U0AAA'),
    );
  });

  it('runs compiled behind the bin symlink, with the shebang, --version and the same answers', async () => {
    expect(readFileSync(join(installed.dir, 'dist/src/cli.js'), 'utf8').split('\n')[0]).toBe(
      '#!/usr/bin/env node',
    );
    expect(await spawnCli(installed.bin, ['--version'], env)).toEqual({
      code: 0,
      stdout: `${VERSION}\n`,
      stderr: '',
    });
    const help = await spawnCli(installed.bin, ['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('audit <run>');
    const unknown = await spawnCli(installed.bin, ['frobnicate'], env);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const runs = await spawnCli(installed.bin, ['runs'], env);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toContain(run.id);
  });
});
