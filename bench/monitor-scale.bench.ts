/**
 * Scale: 1,000 simulated nodes (one loopback HTTP server in this process, routing by path) probed every
 * second for 60 s by a monitor in a child process; the child's share of one core (process.cpuUsage over
 * wall time, after a warm-up) and its peak RSS. Goals: < 50% of a core, < 150 MB.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startStandIns } from '../test/support/metrics-stand-ins.js';
import type { BenchRow } from './harness.js';

const NODES = 1_000;
const SECONDS = Number(process.env.SCALE_SECONDS ?? 60);

interface ChildReport {
  readonly cpuShare: number;
  readonly maxRssMb: number;
  readonly baselineRssMb: number;
  readonly heapUsedMb: number;
  readonly probes: number;
  readonly healthy: number;
  readonly nodes: number;
  readonly posts: number;
}

export async function run(): Promise<BenchRow[]> {
  const t0 = Date.now();
  const standIns = await startStandIns(() => 1_000_000 + Math.floor((Date.now() - t0) / 1_000));
  for (let i = 0; i < NODES; i++) standIns.add(`n${String(i).padStart(4, '0')}`);
  try {
    const child = fileURLToPath(new URL('./monitor-scale-child.ts', import.meta.url));
    const report = await new Promise<ChildReport>((resolve, reject) => {
      const proc = spawn(
        process.execPath,
        ['--import', 'tsx', child, standIns.baseUrl, String(NODES), String(SECONDS)],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
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
    const expectedProbes = NODES * (SECONDS + 5);
    const note = `${NODES} nodes @1s for ${SECONDS}s; ${report.probes} probes (~${Math.round((100 * report.probes) / expectedProbes)}% of ${expectedProbes}); ${report.healthy}/${report.nodes} healthy; ${report.posts} alerts`;
    const cpuPercent = report.cpuShare * 100;
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
        note: `goal < 150 MB; ${report.baselineRssMb.toFixed(0)} MB before the monitor started (node + tsx + modules), heap in use at the end ${report.heapUsedMb.toFixed(0)} MB`,
      },
    ];
  } finally {
    await standIns.close();
  }
}
