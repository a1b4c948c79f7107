/**
 * The files of deploy/ as an operator installs them: the systemd unit passes `systemd-analyze verify`
 * (and its security review), the compose file keeps Redis's data on a named volume with the append-only
 * file, and the Dockerfile runs as cellops and probes /readyz. The Dockerfile's build itself is replayed
 * by test/e2e/production-layout.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { argsOf, parseDockerfile, stage } from '../../support/dockerfile.js';

const DEPLOY = new URL('../../../deploy/', import.meta.url).pathname;
const UNIT = readFileSync(join(DEPLOY, 'cellops.service'), 'utf8');

function findSystemdAnalyze(): string | undefined {
  for (const candidate of ['/usr/bin/systemd-analyze', '/bin/systemd-analyze']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  return undefined;
}

const analyze = findSystemdAnalyze();
if (analyze === undefined && process.env.CI === 'true') {
  // .ci/run installs systemd; in CI this test must run, never skip.
  throw new Error('systemd-analyze is not installed (apt-get install -y systemd); CI must verify the unit');
}

/** The value(s) of a directive in the unit, e.g. directive('User') → ['cellops']. */
function directive(name: string): string[] {
  return UNIT.split('\n')
    .filter((line) => line.startsWith(`${name}=`))
    .map((line) => line.slice(name.length + 1));
}

/** The unit with paths that exist on this machine: node itself, and an environment file in a temp dir. */
const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function localCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cellops-unit-'));
  tempDirs.push(dir);
  writeFileSync(join(dir, 'env'), 'REDIS_URL=redis://127.0.0.1:6379\n', { mode: 0o600 });
  const unit = UNIT.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`)
    .replace(/^EnvironmentFile=.*$/m, `EnvironmentFile=${join(dir, 'env')}`)
    .replace(/^WorkingDirectory=.*$/m, `WorkingDirectory=${dir}`);
  const file = join(dir, 'cellops.service');
  writeFileSync(file, unit);
  return file;
}

describe('deploy/cellops.service', () => {
  it('runs node on the built main as the unprivileged user cellops, hardened', () => {
    expect(directive('ExecStart')).toEqual(['/usr/bin/node /opt/cellops/dist/src/main.js']);
    expect(directive('User')).toEqual(['cellops']);
    expect(directive('EnvironmentFile')).toEqual(['/etc/cellops/env']);
    expect(directive('Restart')).toEqual(['on-failure']);
    for (const [name, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
      ['AmbientCapabilities', ''],
    ] as const) {
      expect(directive(name), name).toEqual([value]);
    }
    // Nothing is written to disk: no writable path is opened in the read-only file system.
    expect(directive('ReadWritePaths')).toEqual([]);
  });

  it.skipIf(analyze === undefined)('passes systemd-analyze verify without a warning', () => {
    const file = localCopy();
    const result = spawnSync(analyze ?? '', ['verify', file], { encoding: 'utf8' });
    expect(result.stderr + result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it.skipIf(analyze === undefined)('rates OK or better in systemd-analyze security', () => {
    const version = Number(
      /systemd (\d+)/.exec(execFileSync(analyze ?? '', ['--version'], { encoding: 'utf8' }))?.[1],
    );
    // --offline (reviewing a unit file that is not loaded) came with systemd 250.
    if (version < 250) return;
    const result = spawnSync(analyze ?? '', ['security', '--offline=true', localCopy()], {
      encoding: 'utf8',
    });
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(result.stdout)?.[1]);
    expect(exposure).toBeLessThanOrEqual(2);
  });
});

describe('deploy/compose.yaml', () => {
  const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8')) as {
    services: Record<string, Record<string, unknown>>;
    volumes: Record<string, unknown>;
  };

  it('keeps Redis data with appendonly on a named volume, and gives cellops its config read-only', () => {
    const redis = compose.services.redis ?? {};
    const cellops = compose.services.cellops ?? {};
    expect((redis.command as string[]).join(' ')).toContain('--appendonly yes');
    const [volume] = (redis.volumes as string[])[0]?.split(':') ?? [];
    expect(Object.keys(compose.volumes)).toContain(volume);
    expect(cellops.volumes).toContain('./cellops.yaml:/etc/cellops/cellops.yaml:ro');
    expect(JSON.stringify(cellops.env_file)).toContain('cellops.env');
    expect(cellops.environment).toMatchObject({
      REDIS_URL: 'redis://redis:6379',
      CELLOPS_CONFIG: '/etc/cellops/cellops.yaml',
    });
    expect(cellops.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
  });
});

describe('deploy/Dockerfile', () => {
  const stages = parseDockerfile(readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8'));

  it('runs node 24 slim as the user cellops, probing /readyz with node itself', () => {
    const runtime = stage(stages, 'runtime');
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    expect(readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8')).toMatch(/^ARG NODE_IMAGE=node:24-[a-z]+-slim$/m);
    expect(argsOf(runtime, 'USER')).toEqual(['cellops']);
    expect(argsOf(runtime, 'CMD')).toEqual(['["node", "dist/src/main.js"]']);
    const [healthcheck] = argsOf(runtime, 'HEALTHCHECK');
    expect(healthcheck).toContain('CMD ["node", "-e"');
    expect(healthcheck).toContain('/readyz');
    expect(argsOf(runtime, 'COPY')).toEqual([
      '--from=build /app/package.json ./package.json',
      '--from=build /app/node_modules ./node_modules',
      '--from=build /app/dist ./dist',
    ]);
  });
});

describe('deploy/host: the node hosts sudoers and helper', () => {
  const sudoers = readFileSync(join(DEPLOY, 'host', 'sudoers'), 'utf8');
  const rules = sudoers.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));

  it('passes visudo -cf', () => {
    const check = spawnSync('visudo', ['-c', '-f', join(DEPLOY, 'host', 'sudoers')], { encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });

  it('allows the helper and nothing else: no shell, no other program, no wildcard, no environment', () => {
    const commandRules = rules.filter((line) => !line.startsWith('Defaults'));
    expect(commandRules).toEqual(['cellops ALL=(root) NOPASSWD: /usr/local/sbin/cellops-host']);
    expect(sudoers).not.toMatch(/\bALL\s*$|NOPASSWD:\s*ALL|\*|\/bin\/sh|bash|env_keep|SETENV/m);
  });

  it('ships a helper that is valid POSIX sh and reads its limits from a root-owned /etc/cellops/host.conf', () => {
    const helper = join(DEPLOY, 'host', 'cellops-host');
    const syntax = spawnSync('sh', ['-n', helper], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
    const text = readFileSync(helper, 'utf8');
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toContain('CONF=/etc/cellops/host.conf');
    // Nothing is evaluated as shell code: no eval, no sh -c, no bash.
    const code = text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n');
    expect(code).not.toMatch(/^\s*eval\b|[;|&]\s*eval\b|\bsh -c\b|\bbash -c\b/m);
    const example = readFileSync(join(DEPLOY, 'host', 'host.conf.example'), 'utf8');
    expect(example).toMatch(/^PATHS='/m);
  });
});
