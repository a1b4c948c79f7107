/**
 * Watches the lab's kcnd stand-ins for two running nodes on one key: every `intervalMs` it asks every
 * watched host, at the same moment, for the node address it runs (kaia_nodeAddress over HTTP, a fresh
 * connection each time) and reads the lab's records of running stand-ins (`<lab>/running/*.json` whose
 * process is alive). A sample in which one address is run by two hosts is a violation.
 *
 *   const sampler = startKeySampler(lab, ['cn1', 'cn1s']);
 *   … runs …
 *   const report = await sampler.stop();   // report.violations must be empty
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Lab } from '../lab/lab.js';
import type { RunningRecord } from '../lab/lab-state.js';

export interface KeySample {
  /** Date.now() when the sample was taken. */
  readonly at: number;
  /** Host → address, from the node's own answer. */
  readonly answered: Readonly<Record<string, string>>;
  /** Host → address, from the running records of live stand-ins. */
  readonly running: Readonly<Record<string, string>>;
}

export interface KeySamplerReport {
  readonly samples: readonly KeySample[];
  /** Samples in which two hosts ran the same address, with what each source said. */
  readonly violations: readonly { at: number; address: string; hosts: string[]; source: string }[];
}

function nodeAddress(url: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'kaia_nodeAddress', params: [] });
    const req = request(
      url,
      { method: 'POST', agent: false, timeout: timeoutMs, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { result?: unknown };
            resolve(typeof parsed.result === 'string' ? parsed.result.toLowerCase() : undefined);
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

function pidAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function runningRecords(lab: Lab, hosts: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const host of hosts) {
    try {
      const record = JSON.parse(
        readFileSync(join(lab.root, 'running', `${host}.json`), 'utf8'),
      ) as RunningRecord;
      if (pidAlive(record.pid)) out[host] = record.address.toLowerCase();
    } catch {
      // not running
    }
  }
  return out;
}

function duplicates(byHost: Readonly<Record<string, string>>): Map<string, string[]> {
  const hostsOf = new Map<string, string[]>();
  for (const [host, address] of Object.entries(byHost))
    hostsOf.set(address, [...(hostsOf.get(address) ?? []), host]);
  return new Map([...hostsOf].filter(([, hosts]) => hosts.length > 1));
}

export function startKeySampler(
  lab: Lab,
  hosts: readonly string[],
  intervalMs = 100,
): { stop(): Promise<KeySamplerReport>; samples(): readonly KeySample[] } {
  const samples: KeySample[] = [];
  const violations: KeySamplerReport['violations'][number][] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      const answers = await Promise.all(hosts.map((h) => nodeAddress(lab.host(h).rpcUrl, intervalMs * 5)));
      const answered: Record<string, string> = {};
      hosts.forEach((h, i) => {
        const address = answers[i];
        if (address !== undefined) answered[h] = address;
      });
      const running = runningRecords(lab, hosts);
      samples.push({ at, answered, running });
      for (const [source, byHost] of [
        ['kaia_nodeAddress', answered],
        ['running records', running],
      ] as const)
        for (const [address, twice] of duplicates(byHost))
          violations.push({ at, address, hosts: twice, source });
      const rest = intervalMs - (Date.now() - at);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
  })();
  return {
    samples: () => samples,
    async stop() {
      stopped = true;
      await loop;
      return { samples, violations };
    },
  };
}
