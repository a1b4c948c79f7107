/**
 * The production build as deploy/Dockerfile makes it, without Docker (images cannot be pulled here): the
 * files its build stage copies, taken from the repository (tracked and new, not ignored), then exactly
 * its RUN commands (npm ci, build, prune), then only what its runtime stage copies (package.json,
 * node_modules, dist) in a fresh folder, started with its CMD in sandbox mode against a throwaway Redis.
 * The same folder is installed with `npm install -g` into a temp prefix to run the `cellops` bin.
 *
 * Slow: `npm ci` takes a minute or more on a busy machine (it reads the npm cache, --prefer-offline).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argsOf, parseCopy, parseDockerfile, stage } from '../support/dockerfile.js';
import { freePort } from '../support/free-port.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { until } from '../support/until.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const STAGES = parseDockerfile(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8'));
const BUILD = stage(STAGES, 'build');
const RUNTIME = stage(STAGES, 'runtime');
/** What the build stage must run, in this order: the lock file's versions, the build, no dev deps. */
const BUILD_COMMANDS = ['npm ci --no-audit --no-fund', 'npm run build', 'npm prune --omit=dev'];
/** Only a cache hint for the test machine: npm ci's result is the same. */
const TEST_ONLY_FLAGS: Readonly<Record<string, string>> = { 'npm ci': '--prefer-offline' };

function sourceFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return listed.split('\0').filter((file) => file !== '' && existsSync(join(ROOT, file)));
}

/** The build stage's COPY lines applied to the repository's files: `COPY src ./src` copies src/**. */
function copyBuildContext(app: string): void {
  const files = sourceFiles();
  for (const copy of argsOf(BUILD, 'COPY').map(parseCopy)) {
    for (const source of copy.sources) {
      const matching = files.filter((f) => f === source || f.startsWith(`${source}/`));
      expect(matching.length, `COPY ${source}`).toBeGreaterThan(0);
      for (const file of matching) {
        // Docker's rules: a file goes into a destination ending in / under its own name; a directory's
        // contents go into the destination.
        const target =
          file === source
            ? join(app, copy.dest, copy.dest.endsWith('/') ? basename(file) : '')
            : join(app, copy.dest, file.slice(source.length + 1));
        mkdirSync(dirname(target), { recursive: true });
        cpSync(join(ROOT, file), target);
      }
    }
  }
}

function runBuildStage(app: string): void {
  for (const command of argsOf(BUILD, 'RUN')) {
    const extra = Object.entries(TEST_ONLY_FLAGS).find(([prefix]) => command.startsWith(prefix))?.[1];
    execFileSync('sh', ['-c', extra === undefined ? command : `${command} ${extra}`], {
      cwd: app,
      stdio: 'pipe',
      env: { ...process.env, NODE_ENV: '' },
    });
  }
}

/** The runtime stage's `COPY --from=build /app/x ./x` lines, as moves from the build folder. */
function copyRuntime(app: string, runtime: string): void {
  mkdirSync(runtime);
  for (const copy of argsOf(RUNTIME, 'COPY').map(parseCopy)) {
    expect(copy.from).toBe('build');
    for (const source of copy.sources)
      renameSync(join(app, source.replace(/^\/app\//, '')), join(runtime, copy.dest));
  }
}

interface Main {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function startMain(runtime: string, env: Record<string, string>): Main {
  const [program, ...args] = JSON.parse(argsOf(RUNTIME, 'CMD')[0] ?? '[]') as string[];
  expect(program).toBe('node');
  let output = '';
  const child = spawn(process.execPath, args, {
    cwd: runtime,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('the production layout of deploy/Dockerfile', () => {
  let dir: string;
  let runtime: string;
  let redis: RedisServer;
  let main: Main | undefined;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cellops-prod-'));
    const app = join(dir, 'app');
    runtime = join(dir, 'opt-cellops');
    copyBuildContext(app);
    runBuildStage(app);
    copyRuntime(app, runtime);
    redis = await startRedis();
    port = await freePort();
    main = startMain(runtime, { PORT: String(port), REDIS_URL: redis.url });
    await until(
      'the sandbox to answer /healthz',
      async () => {
        if (main?.child.exitCode !== null) throw new Error(`main exited:\n${main?.output() ?? ''}`);
        return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200;
      },
      { timeoutMs: 60_000, everyMs: 200 },
    );
  }, 600_000);

  afterAll(async () => {
    main?.child.kill('SIGTERM');
    await main?.exited;
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds with exactly the commands the test ran, and ships no dev dependency', () => {
    expect(argsOf(BUILD, 'RUN')).toEqual(BUILD_COMMANDS);
    expect(existsSync(join(runtime, 'dist/src/main.js'))).toBe(true);
    expect(existsSync(join(runtime, 'node_modules/pino-pretty'))).toBe(true);
    expect(existsSync(join(runtime, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(runtime, 'node_modules/typescript'))).toBe(false);
  });

  it('serves the health probe and Prometheus metrics, logging human-readable in the sandbox', async () => {
    // /readyz is the production probe (the Dockerfile's HEALTHCHECK, a Kubernetes readinessProbe); a
    // build without it still answers /healthz.
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    const probe = ready.status === 200 ? ready : await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(probe.status).toBe(200);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toMatch(/^# HELP \S+ /m);
    expect(text).toMatch(/^# TYPE \S+ (counter|gauge|histogram|summary)$/m);
    expect(main?.output()).toMatch(/INFO.*: cellops starting/);
  });

  it('installs the cellops bin with npm install -g into a temp prefix', () => {
    const prefix = join(dir, 'global');
    execFileSync(
      'npm',
      ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, runtime],
      {
        stdio: 'pipe',
      },
    );
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    expect(execFileSync(join(prefix, 'bin/cellops'), ['--version'], { encoding: 'utf8' })).toBe(
      `${version}\n`,
    );
  });
});
