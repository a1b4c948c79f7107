/**
 * Scale: 1,000 simulated nodes (one loopback HTTP server in this process, routing by path) probed every
 * second for 60 s by a monitor in a child process; the child's share of one core (process.cpuUsage over
 * wall time, after a warm-up) and its peak RSS. Goals: < 50% of a core, < 150 MB.
 *
 * How the child runs: its TypeScript (bench/monitor-scale-child.ts and what it imports from src) is
 * compiled with tsc into node_modules/.cache/monitor-scale-bench and run on plain node, as
 * `npm run build && node dist/src/main.js` runs the bot. Under tsx (`npm start`), the loader's own thread
 * and compiler add to the process's RSS whatever the monitor does; that cost is measured here separately
 * (an empty module with and without `--import tsx`) and given in the note, not hidden.
 * SCALE_LOADER=tsx runs the child under tsx instead, as before. SCALE_SECONDS shortens the run.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startStandIns } from '../test/support/metrics-stand-ins.js';
import type { BenchRow } from './harness.js';

const NODES = 1_000;
const SECONDS = Number(process.env.SCALE_SECONDS ?? 60);
const UNDER_TSX = process.env.SCALE_LOADER === 'tsx';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD_TS = join(ROOT, 'bench', 'monitor-scale-child.ts');
const OUT_DIR = join(ROOT, 'node_modules', '.cache', 'monitor-scale-bench');

interface ChildReport {
  readonly cpuShare: number;
  readonly cpuMsPerProbe: number;
  readonly measuredProbes: number;
  readonly meanProbeMs: number;
  readonly maxRssMb: number;
  readonly baselineRssMb: number;
  readonly heapUsedMb: number;
  readonly probes: number;
  readonly healthy: number;
  readonly nodes: number;
  readonly posts: number;
}

/** Compiles the child and its imports (not the whole project) to ESM JavaScript; returns its path. */
async function compileChild(): Promise<string> {
  await rm(OUT_DIR, { recursive: true, force: true });
  await mkdir(OUT_DIR, { recursive: true });
  const tsconfig = join(OUT_DIR, 'tsconfig.json');
  await writeFile(
    tsconfig,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      // Types are checked by `npm run typecheck`; here only the JavaScript is wanted.
      compilerOptions: { outDir: OUT_DIR, rootDir: ROOT, noEmit: false, sourceMap: false, noCheck: true },
      files: [CHILD_TS],
      include: [],
    }),
  );
  // Under node_modules, Node does not look further up for "type": "module".
  await writeFile(join(OUT_DIR, 'package.json'), '{ "type": "module" }\n');
  await promisify(execFile)(process.execPath, [
    join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    tsconfig,
  ]);
  return join(OUT_DIR, 'bench', 'monitor-scale-child.js');
}

/** RSS in MB of a node process that has loaded an empty module, with the given node arguments. */
async function emptyProcessRssMb(args: readonly string[]): Promise<number> {
  const script = join(OUT_DIR, 'rss.js');
  await writeFile(script, 'process.stdout.write(String(process.memoryUsage().rss));\n');
  const { stdout } = await promisify(execFile)(process.execPath, [...args, script], { cwd: ROOT });
  return Number(stdout) / 1024 / 1024;
}

export async function run(): Promise<BenchRow[]> {
  const childArgs = UNDER_TSX ? ['--import', 'tsx', CHILD_TS] : [await compileChild()];
  const t0 = Date.now();
  const standIns = await startStandIns(() => 1_000_000 + Math.floor((Date.now() - t0) / 1_000));
  for (let i = 0; i < NODES; i++) standIns.add(`n${String(i).padStart(4, '0')}`);
  let report: ChildReport;
  try {
    report = await new Promise<ChildReport>((resolve, reject) => {
      const proc = spawn(process.execPath, [...childArgs, standIns.baseUrl, String(NODES), String(SECONDS)], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      proc.on('error', reject);
      proc.on('exit', (code) => {
        if (code !== 0) reject(new Error(`scale child exited ${code}: ${err.slice(0, 2000)}`));
        else resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as ChildReport);
      });
    });
  } finally {
    await standIns.close();
  }
  const tsxCostMb = (await emptyProcessRssMb(['--import', 'tsx'])) - (await emptyProcessRssMb([]));
  const expectedProbes = NODES * (SECONDS + 5);
  const how = UNDER_TSX ? 'under tsx' : 'compiled, plain node';
  const note =
    `${NODES} nodes @1s for ${SECONDS}s (${how}); ${report.probes} probes (~${Math.round((100 * report.probes) / expectedProbes)}% of ${expectedProbes}), ` +
    `${report.cpuMsPerProbe.toFixed(3)} ms CPU per probe, mean probe ${report.meanProbeMs.toFixed(1)} ms; ` +
    `${report.healthy}/${report.nodes} healthy; ${report.posts} alerts`;
  const cpuPercent = report.cpuShare * 100;
  const tsxNote = UNDER_TSX
    ? `the tsx loader accounts for ~${tsxCostMb.toFixed(0)} MB of it`
    : `under tsx (npm start) add ~${tsxCostMb.toFixed(0)} MB for the loader: ~${(report.maxRssMb + tsxCostMb).toFixed(0)} MB`;
  return [
    {
      name: 'scale: monitor CPU share of one core',
      samples: 1,
      p50: cpuPercent,
      p99: cpuPercent,
      unit: '% core',
      note: `goal < 50%; ${note}`,
    },
    {
      name: 'scale: monitor peak RSS',
      samples: 1,
      p50: report.maxRssMb,
      p99: report.maxRssMb,
      unit: 'MB',
      note:
        `goal < 150 MB; ${report.baselineRssMb.toFixed(0)} MB before the monitor started (node + modules), ` +
        `heap in use at the end ${report.heapUsedMb.toFixed(0)} MB; ${tsxNote}`,
    },
  ];
}
