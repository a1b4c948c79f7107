/**
 * `npm run bench`: runs every benchmark module named in BENCHES (or those given as arguments, e.g.
 * `npm run bench -- lock`) and prints one table.
 */
import { formatTable, type BenchRow } from './harness.js';

const BENCHES: Record<string, () => Promise<{ run: () => Promise<BenchRow[]> }>> = {
  lock: () => import('./lock.bench.js'),
  engine: () => import('./engine.bench.js'),
  detection: () => import('./detection.bench.js'),
  scale: () => import('./monitor-scale.bench.js'),
  ack: () => import('./ack.bench.js'),
  failover: () => import('./failover.bench.js'),
  snapshot: () => import('./failover-snapshot.bench.js'),
  switchover: () => import('./switchover.bench.js'),
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const names = wanted.length > 0 ? wanted : Object.keys(BENCHES);
  const rows: BenchRow[] = [];
  for (const name of names) {
    const load = BENCHES[name];
    if (!load) throw new Error(`unknown benchmark "${name}" (known: ${Object.keys(BENCHES).join(', ')})`);
    process.stderr.write(`bench: ${name}…\n`);
    const module = await load();
    rows.push(...(await module.run()));
  }
  process.stdout.write(`${formatTable(rows)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
