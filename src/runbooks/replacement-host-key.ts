/**
 * The snapshot failover's step between launching the replacement and the first SSH command to it
 * (docs/runbooks.md §Snapshot failover, `replacement-host-key`): learn the replacement's SSH host key without
 * trusting it on first use.
 *
 * - `hostKeys: console` (default): a stock image makes fresh host keys at first boot, which no known_hosts
 *   can list ahead. cloud-init prints them on the serial console, which only the EC2 API (and so only whoever
 *   holds our credentials) can read: a channel the network cannot tamper with. The step polls
 *   GetConsoleOutput (Latest) with backoff until the block is there, records the keys as a fact (public
 *   keys, not secrets) so that a resumed run pins the same keys, and every later SSH command to the
 *   replacement carries them (replacementOf → HostRef.hostKeys): the adapter refuses any other key before
 *   a command is sent. When known_hosts already lists the address (a subnet pattern for an image that keeps
 *   its host keys), that entry is used instead.
 * - `hostKeys: known_hosts`: only known_hosts; without an entry for the address the step stops.
 *
 * Then it waits until the replacement answers SSH under that key.
 */
import { requireFactOf } from './shaped-facts.js';
import type { FailoverContext, FailoverStep } from './failover-params.js';
import type { SnapshotFailoverTimings } from './failover-timings.js';
import { SNAPSHOT_FACTS, requireFact } from './failover-facts.js';
import { peekSnapshotTarget, replacementWords } from './failover-plan-text.js';
import { snapshotTargetOf } from './cell-nodes.js';
import { parseConsoleHostKeys } from './console-host-keys.js';
import { replacementHost, waitForSsh } from './replacement.js';
import { opsContextOf, ping } from './snapshot-ops.js';
import { describeHostKey, parseHostPublicKey } from '../ports/host-key.js';
import { CellopsError, ExternalError, SafetyGateError, StepTimeoutError, describeError } from '../errors.js';

export const HOST_KEY_STEP_ID = 'replacement-host-key';
/** The first pause between two reads of the console; it doubles up to `pollMs`. */
const FIRST_CONSOLE_POLL_MS = 1_000;

export type HostKeySource = 'console' | 'known_hosts';

export function replacementHostKeyStep(timings: SnapshotFailoverTimings): FailoverStep {
  return {
    id: HOST_KEY_STEP_ID,
    title: "Learn the replacement's SSH host key from its console and pin it",
    destructive: false,
    timeoutMs: timings.consoleKeyMs + timings.sshReadyMs + 60_000,
    describe: (ctx) => {
      const mode = peekSnapshotTarget(ctx).launch?.hostKeys ?? 'console';
      const where = replacementWords(ctx);
      const wait = `answers SSH (≤ ${Math.round(timings.sshReadyMs / 60_000)} min)`;
      if (mode === 'known_hosts')
        return `Use only the known_hosts entry for ${where} (nodes.${ctx.params.cn}.failover.launch.hostKeys: known_hosts); stop if there is none. Then wait until it ${wait}.`;
      return (
        `If known_hosts lists ${where}'s address (patterns included), use that entry. Otherwise read EC2 GetConsoleOutput (Latest) of the instance, ` +
        `backing off from ${FIRST_CONSOLE_POLL_MS / 1000} s to ${Math.round(timings.pollMs / 1000)} s for up to ${Math.round(timings.consoleKeyMs / 60_000)} min, ` +
        `until cloud-init's -----BEGIN SSH HOST KEY KEYS----- block appears, record those keys with the run and accept only them for that instance: ` +
        `any other key stops the run before a command runs there (never trust on first use). Then wait until it ${wait}.`
      );
    },
    run: async (ctx) => {
      const instanceId = requireFactOf(ctx, SNAPSHOT_FACTS.instanceId, 'instanceId');
      const address = requireFact<string>(ctx, SNAPSHOT_FACTS.privateIp);
      const pinned = await hostKeysFor(ctx, instanceId, address, timings);
      await waitForSsh(ctx, replacementHost(ctx.params.cn, address, pinned), instanceId, timings);
    },
    verify: async (ctx) => {
      const address = ctx.fact<string>(SNAPSHOT_FACTS.privateIp);
      const source = ctx.fact<HostKeySource>(SNAPSHOT_FACTS.hostKeySource);
      const pinned = ctx.fact<readonly string[]>(SNAPSHOT_FACTS.hostKeys);
      if (address === undefined || source === undefined) return false;
      if (source === 'console' && (pinned === undefined || pinned.length === 0)) return false;
      try {
        await ping(
          opsContextOf(ctx, timings.commandMs),
          replacementHost(ctx.params.cn, address, pinned),
          timings.probeMs,
        );
        return true;
      } catch {
        return false;
      }
    },
  };
}

/**
 * The keys to pin for the replacement, or undefined when known_hosts vouches for it. A pin recorded by an
 * earlier attempt of this run is kept: a resumed run must not learn a new key from a console that may
 * have changed meanwhile.
 */
async function hostKeysFor(
  ctx: FailoverContext,
  instanceId: string,
  address: string,
  timings: SnapshotFailoverTimings,
): Promise<readonly string[] | undefined> {
  const recorded = ctx.fact<readonly string[]>(SNAPSHOT_FACTS.hostKeys);
  if (recorded !== undefined && recorded.length > 0) {
    ctx.setFact(SNAPSHOT_FACTS.hostKeySource, 'console');
    ctx.output(`keeping the host keys this run pinned for ${instanceId}: ${fingerprints(recorded)}`);
    return recorded;
  }
  const mode = snapshotTargetOf(ctx).launch.hostKeys;
  const known = (await ctx.ports.shell.knownHostKeys?.(address)) ?? [];
  if (known.length > 0) {
    ctx.setFact(SNAPSHOT_FACTS.hostKeySource, 'known_hosts');
    ctx.output(`known_hosts lists ${address} (${fingerprints(known)}): using that entry`);
    return undefined;
  }
  if (mode === 'known_hosts')
    throw new SafetyGateError(
      `known_hosts has no entry for ${instanceId} at ${address}, and nodes.${ctx.params.cn}.failover.launch.hostKeys is known_hosts. ` +
        `Add an entry that matches the subnet (e.g. a 10.0.2.* pattern with the image's host key) and resume, ` +
        `or set hostKeys: console to pin the key the instance prints on its console.`,
    );
  const keys = await waitForConsoleKeys(ctx, instanceId, timings);
  ctx.setFact(SNAPSHOT_FACTS.hostKeys, [...keys]);
  ctx.setFact(SNAPSHOT_FACTS.hostKeySource, 'console');
  ctx.output(`pinned the host keys ${instanceId} printed on its console: ${fingerprints(keys)}`);
  ctx.output(
    `to reach it with ssh outside cellops, add to known_hosts: ${keys.map((k) => `${address} ${k}`).join(' | ')}`,
  );
  return keys;
}

/** Polls the console (Latest) with backoff until cloud-init's host key block is there. */
async function waitForConsoleKeys(
  ctx: FailoverContext,
  instanceId: string,
  timings: SnapshotFailoverTimings,
): Promise<readonly string[]> {
  const { clock, cloud } = ctx.ports;
  const deadline = clock.now() + timings.consoleKeyMs;
  let pause = Math.min(FIRST_CONSOLE_POLL_MS, timings.pollMs);
  let reads = 0;
  let lastError: unknown;
  for (;;) {
    try {
      reads++;
      const output = await cloud.consoleOutput(instanceId, { latest: true });
      if (output === undefined)
        throw new ExternalError(
          'ec2_not_found',
          `instance ${instanceId} no longer exists; its console cannot be read`,
        );
      const found = parseConsoleHostKeys(output.text);
      if (found.kind === 'found') return found.keys;
      if (found.kind === 'invalid')
        throw new SafetyGateError(
          `the SSH host key block on the console of ${instanceId} cannot be trusted (${found.problem}); nothing was pinned. ` +
            'Inspect the instance (EC2 serial console), terminate it and start the failover again.',
        );
      lastError = undefined;
    } catch (error) {
      if (!(error instanceof CellopsError) || !error.retryable) throw consoleError(ctx, instanceId, error);
      lastError = error;
    }
    if (clock.now() + pause > deadline)
      throw new StepTimeoutError(
        `no SSH host key block on the console of ${instanceId} after ${Math.round(timings.consoleKeyMs / 1000)} s (${reads} reads of GetConsoleOutput` +
          `${lastError === undefined ? '' : `, last error: ${describeError(lastError)}`}). cloud-init prints it once sshd's keys exist; ` +
          'check that the image runs cloud-init with ssh keys to console enabled, then resume to wait again, or set hostKeys: known_hosts.',
      );
    await clock.sleep(pause, ctx.signal);
    pause = Math.min(pause * 2, timings.pollMs);
  }
}

function consoleError(ctx: FailoverContext, instanceId: string, error: unknown): unknown {
  if (!(error instanceof CellopsError) || error instanceof SafetyGateError || error.code === 'ec2_not_found')
    return error;
  return new ExternalError(
    error.code,
    `${error.message} cellops reads the replacement's SSH host key from its console: allow ec2:GetConsoleOutput on ${instanceId}, ` +
      `or set nodes.${ctx.params.cn}.failover.launch.hostKeys: known_hosts with a known_hosts entry for the subnet.`,
    { cause: error },
  );
}

function fingerprints(keys: readonly string[]): string {
  return keys
    .map((k) => {
      const key = parseHostPublicKey(k);
      return typeof key === 'string' ? `(unreadable: ${key})` : describeHostKey(key);
    })
    .join(', ');
}
