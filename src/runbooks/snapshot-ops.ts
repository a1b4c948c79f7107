/**
 * The node operations the snapshot failover needs beyond the common ones: finding and mounting the
 * restored data volume, keeping only `klay/chaindata` on it, pointing `kcnd.conf` at it, installing a
 * nodekey on a fresh machine, and fencing a failed CN over SSH on a best-effort basis.
 *
 * The common operations (services, files, checksums) are node-ops.ts; these are the ones only this
 * runbook needs. Each multi-command operation is one POSIX `sh -c` script run through `sudo -n`, with every variable
 * part passed as a positional argument (never spliced into the script), and with `$0` set to a
 * `cellops-<operation>` name so that process lists, sudo logs and test doubles can tell them apart.
 * Secrets travel on standard input only; the output of a command that read a key is never returned.
 */
import { privilegedScript, sh } from '../ports/shell-command.js';
import { plainPathProblem, shellPlainPathGuard } from '../config/plain-path.js';
import { redactThenTruncate } from '../infra/redact.js';
import { KCND_CONF_PATH, confDataDir } from './kcnd-conf.js';
import type { ShellCommand } from '../ports/shell-command.js';
import type { ExecResult, Fence, HostRef, Shell } from '../ports/shell.js';
import { fenceOf, nodeCommands } from './node-ops.js';
import { ExternalError, SafetyGateError } from '../errors.js';

/** Where the RPM package keeps kcnd's configuration (kaia build/rpm). */
export const KCND_CONF = KCND_CONF_PATH;

export interface OpsContext {
  readonly shell: Shell;
  readonly signal?: AbortSignal;
  /** Timeout of one command. */
  readonly commandTimeoutMs: number;
  /** The run's fencing token, for hosts that check it. */
  readonly fence?: Fence;
}

/** The OpsContext of a step: its shell and abort signal, with a per-command timeout. */
export function opsContextOf(
  ctx: {
    readonly ports: { readonly shell: Shell };
    readonly signal: AbortSignal;
    readonly config: { readonly cell: string };
    readonly fencingToken?: number;
  },
  commandTimeoutMs: number,
): OpsContext {
  const fence = fenceOf(ctx);
  return { shell: ctx.ports.shell, signal: ctx.signal, commandTimeoutMs, ...(fence ? { fence } : {}) };
}

/** The operations `parsePrivilegedScript` can return, for simulated hosts to check they cover them all. */
export const SNAPSHOT_OPERATIONS = ['mount-data', 'keep-chaindata', 'data-layout', 'set-datadir'] as const;

async function run(
  ops: OpsContext,
  host: HostRef,
  command: ShellCommand,
  stdin?: string,
  timeoutMs?: number,
): Promise<ExecResult> {
  return ops.shell.exec(host, command, {
    timeoutMs: timeoutMs ?? ops.commandTimeoutMs,
    ...(stdin === undefined ? {} : { stdin }),
    ...(ops.signal === undefined ? {} : { signal: ops.signal }),
    ...(ops.fence === undefined ? {} : { fence: ops.fence }),
  });
}

/** The end of a command's output, where the error usually is; redacted before it is cut. */
function tail(text: string, max = 400): string {
  return redactThenTruncate(text.trim(), max, { keep: 'end' });
}

function failed(what: string, host: HostRef, result: ExecResult): ExternalError {
  return new ExternalError(
    'command_failed',
    `${what} on ${host.name} (${host.address}) failed with exit status ${result.exitCode}: ${tail(result.stderr) || tail(result.stdout) || 'no output'}`,
  );
}

/** Resolves once `true` runs over SSH. Used to wait for a freshly booted machine. */
export async function ping(ops: OpsContext, host: HostRef, timeoutMs: number): Promise<void> {
  const result = await run(ops, host, sh`true`, undefined, timeoutMs);
  if (result.exitCode !== 0) throw failed('`true`', host, result);
}

/**
 * The block device of an attached EBS volume. Nitro instances expose EBS as NVMe and name it by the
 * volume id (`/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…`) whatever device name was asked for;
 * Xen instances use the requested name or its `xvd` spelling. A volume with exactly one partition is
 * mounted through that partition.
 */
const MOUNT_SCRIPT = `set -eu
vol="$1"; dev="$2"; mp="$3"
${shellPlainPathGuard('mp')}
nvme="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$(printf %s "$vol" | tr -d -)"
alt=$(printf %s "$dev" | sed 's#^/dev/sd#/dev/xvd#')
if [ -e "$nvme" ]; then src=$(readlink -f "$nvme")
elif [ -e "$dev" ]; then src=$(readlink -f "$dev")
elif [ -e "$alt" ]; then src="$alt"
else echo "no block device for $vol yet (looked for $nvme, $dev, $alt)" >&2; exit 3
fi
parts=$(lsblk -nrpo NAME,TYPE "$src" 2>/dev/null | awk '$2=="part"{print $1}')
if [ -n "$parts" ] && [ "$(printf '%s\\n' "$parts" | wc -l)" -eq 1 ]; then src="$parts"; fi
mkdir -p -- "$mp"
if mountpoint -q -- "$mp"; then
  cur=$(findmnt -n -o SOURCE --target "$mp")
  if [ "$(readlink -f "$cur")" != "$(readlink -f "$src")" ]; then echo "$mp is already mounted from $cur, not $src" >&2; exit 4; fi
else
  mount -- "$src" "$mp"
fi
uuid=$(blkid -s UUID -o value "$src" || true); fstype=$(blkid -s TYPE -o value "$src" || true)
if [ -n "$uuid" ] && [ -n "$fstype" ]; then
  tmp=$(mktemp)
  awk -v mp="$mp" '$2 != mp' /etc/fstab > "$tmp"
  printf 'UUID=%s %s %s defaults,nofail 0 2\\n' "$uuid" "$mp" "$fstype" >> "$tmp"
  cat -- "$tmp" > /etc/fstab; rm -f -- "$tmp"
fi
echo "mounted $src at $mp"`;

/** Mounts the restored volume at `mountPoint` and records it in /etc/fstab (nofail) so a reboot keeps it. */
export async function mountDataVolume(
  ops: OpsContext,
  host: HostRef,
  volumeId: string,
  device: string,
  mountPoint: string,
): Promise<string> {
  const result = await run(
    ops,
    host,
    privilegedScript('mount-data', MOUNT_SCRIPT, [volumeId, device, mountPoint]),
  );
  if (result.exitCode !== 0) throw failed(`mounting ${volumeId} at ${mountPoint}`, host, result);
  return result.stdout.trim();
}

/**
 * Keeps only `klay/chaindata` on the mounted volume, moving it to `<mountPoint>/klay/chaindata` when the
 * PN kept its DATA_DIR below the volume's root (the guide's "rename the directory"). `lost+found` is file
 * system metadata and stays. Renames within one file system are instant, so the chaindata is never copied.
 * Re-runnable: a chaindata parked at `.cellops-chaindata` by an interrupted run is picked up again.
 */
const CLEAN_SCRIPT = `set -eu
mp="$1"
${shellPlainPathGuard('mp')}
mountpoint -q -- "$mp" || { echo "$mp is not a mount point; refusing to delete anything there" >&2; exit 2; }
park="$mp/.cellops-chaindata"
if [ ! -d "$park" ]; then
  found=$(find "$mp" -mindepth 2 -maxdepth 6 -type d -path '*/klay/chaindata' -print -prune)
  n=$(printf '%s' "$found" | grep -c . || true)
  if [ "$n" -eq 0 ]; then echo "no klay/chaindata directory on the volume mounted at $mp" >&2; exit 5; fi
  if [ "$n" -gt 1 ]; then echo "several klay/chaindata directories on the volume: $(echo $found)" >&2; exit 6; fi
  echo "chaindata found at $found"
  mv -- "$found" "$park"
fi
removed=$(find "$mp" -mindepth 1 -maxdepth 1 ! -name .cellops-chaindata ! -name lost+found -printf '%f ')
find "$mp" -mindepth 1 -maxdepth 1 ! -name .cellops-chaindata ! -name lost+found -exec rm -rf -- {} +
mkdir -m 0755 -- "$mp/klay"
mv -- "$park" "$mp/klay/chaindata"
echo "removed: \${removed:-nothing}"
echo "kept: $mp/klay/chaindata"`;

export async function keepOnlyChaindata(ops: OpsContext, host: HostRef, dataDir: string): Promise<string[]> {
  const result = await run(ops, host, privilegedScript('keep-chaindata', CLEAN_SCRIPT, [dataDir]));
  if (result.exitCode !== 0) throw failed(`cleaning ${dataDir}`, host, result);
  return result.stdout.trim().split('\n').filter(Boolean);
}

/** What is left under DATA_DIR: top-level names and the names under `klay/`, or undefined when unmounted. */
const LAYOUT_SCRIPT = `mp="$1"
mountpoint -q -- "$mp" || exit 3
[ -d "$mp/klay/chaindata" ] || exit 4
printf 'top:'; find "$mp" -mindepth 1 -maxdepth 1 -printf ' %f'; echo
printf 'klay:'; find "$mp/klay" -mindepth 1 -maxdepth 1 -printf ' %f'; echo`;

export interface DataLayout {
  readonly mounted: boolean;
  readonly hasChaindata: boolean;
  /** Names directly under DATA_DIR other than `klay` and `lost+found`. */
  readonly strayTop: readonly string[];
  /** Names under DATA_DIR/klay other than `chaindata` (and the nodekey files the run installs later). */
  readonly strayKlay: readonly string[];
}

export async function dataLayout(ops: OpsContext, host: HostRef, dataDir: string): Promise<DataLayout> {
  const result = await run(ops, host, privilegedScript('data-layout', LAYOUT_SCRIPT, [dataDir]));
  if (result.exitCode === 3) return { mounted: false, hasChaindata: false, strayTop: [], strayKlay: [] };
  if (result.exitCode === 4) return { mounted: true, hasChaindata: false, strayTop: [], strayKlay: [] };
  if (result.exitCode !== 0) throw failed(`listing ${dataDir}`, host, result);
  const line = (prefix: string): string[] =>
    (result.stdout.split('\n').find((l) => l.startsWith(prefix)) ?? prefix)
      .slice(prefix.length)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
  return {
    mounted: true,
    hasChaindata: true,
    strayTop: line('top:').filter((n) => n !== 'klay' && n !== 'lost+found'),
    strayKlay: line('klay:').filter((n) => !['chaindata', 'nodekey', 'bls-nodekey'].includes(n)),
  };
}

const SET_DATADIR_SCRIPT = `set -eu
conf="$1"
[ -f "$conf" ] || { echo "$conf does not exist" >&2; exit 3; }
[ -e "$conf.cellops-orig" ] || cp -p -- "$conf" "$conf.cellops-orig"
tmp=$(mktemp)
D="$2" awk 'BEGIN{done=0} /^[[:space:]]*(export[[:space:]]+)?DATA_DIR=/{ if(!done){print "DATA_DIR=" ENVIRON["D"]; done=1}; next } {print} END{ if(!done) print "DATA_DIR=" ENVIRON["D"] }' "$conf" > "$tmp"
cat -- "$tmp" > "$conf"; rm -f -- "$tmp"`;

/**
 * Makes DATA_DIR in kcnd.conf equal `dataDir`; returns the previous value. The original file is kept once
 * as `kcnd.conf.cellops-orig`.
 */
export async function setConfDataDir(
  ops: OpsContext,
  host: HostRef,
  dataDir: string,
  confPath = KCND_CONF,
): Promise<{ previous: string | undefined; changed: boolean }> {
  const problem = plainPathProblem(dataDir);
  if (problem !== undefined)
    throw new SafetyGateError(
      `DATA_DIR ${JSON.stringify(dataDir)} ${problem}: kcnd.conf is a bash file and the path also reaches /etc/fstab; use a plain path in nodes.<cn>.dataDir`,
    );
  const read = await run(ops, host, nodeCommands.read(confPath));
  if (read.exitCode !== 0) throw failed(`reading ${confPath}`, host, read);
  const previous = confDataDir(read.stdout);
  if (previous === dataDir) return { previous, changed: false };
  const result = await run(
    ops,
    host,
    privilegedScript('set-datadir', SET_DATADIR_SCRIPT, [confPath, dataDir]),
  );
  if (result.exitCode !== 0) throw failed(`setting DATA_DIR in ${confPath}`, host, result);
  return { previous, changed: true };
}
