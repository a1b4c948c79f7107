/**
 * What simulated machines do with disks: the `cellops-*` operations of the snapshot failover
 * (src/runbooks/snapshot-ops.ts: mount the restored volume, keep only klay/chaindata, list the layout, set
 * DATA_DIR in kcnd.conf), acted out on a flat file system (absolute path → content) instead of running
 * their shell scripts, and the file-tree helpers they need.
 *
 * Shared by the sandbox's hosts (sim-hosts.ts) and the runbook tests' small cell (test/support), so both
 * act out the scripts alike. The exit statuses and the lines printed are the scripts' own: the runbook
 * reads them (keep-chaindata's "chaindata found at", data-layout's "top:" and "klay:", exit 3 and 4).
 */
/** A machine's file system as the operations see it; directories exist where files are below them. */
export interface SimFiles {
  paths(): readonly string[];
  get(path: string): string | undefined;
  set(path: string, content: string): void;
  delete(path: string): void;
  /** Moves one file, keeping what the file system keeps about it (its mode). */
  rename(from: string, to: string): void;
}

/** A machine as far as its disks go. */
export interface SimDiskMachine {
  readonly files: SimFiles;
  /** Mount point → id of the volume mounted there. */
  readonly mounts: Map<string, string>;
  /**
   * The files of a volume attached to this machine and visible as a block device (paths relative to the
   * volume's root), or undefined while it is not (not attached, still attaching, another machine's).
   */
  attachedVolume(volumeId: string): Readonly<Record<string, string>> | undefined;
}

/** What a simulated command did. */
export interface SimOutcome {
  readonly exitCode: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

const ok = (stdout = ''): SimOutcome => ({ exitCode: 0, stdout });
const fail = (exitCode: number, stderr = ''): SimOutcome => ({ exitCode, stderr });

const trimDir = (dir: string): string => (dir === '/' ? '' : dir.replace(/\/+$/, ''));

/** Files below a directory (not the directory itself). */
export function filesUnder(files: SimFiles, dir: string): string[] {
  const prefix = `${trimDir(dir)}/`;
  return files.paths().filter((p) => p.startsWith(prefix));
}

/** A file, or a directory with something in it. */
export function pathExists(files: SimFiles, path: string): boolean {
  return files.get(path) !== undefined || filesUnder(files, path).length > 0;
}

/** Names directly under a directory. */
export function childNames(files: SimFiles, dir: string): string[] {
  const base = trimDir(dir);
  return [...new Set(filesUnder(files, dir).map((p) => p.slice(base.length + 1).split('/')[0] ?? ''))];
}

/** `mv` of a file or a whole directory. */
export function moveTree(files: SimFiles, from: string, to: string): void {
  if (files.get(from) !== undefined) {
    files.rename(from, to);
    return;
  }
  for (const path of filesUnder(files, from)) files.rename(path, to + path.slice(from.length));
}

/**
 * The files of the volume mounted at `mountPoint`, relative to its root: what is below the mount point
 * and not below another mount inside it. `/` works too (the root volume).
 */
export function mountedVolumeFiles(
  machine: Pick<SimDiskMachine, 'files' | 'mounts'>,
  mountPoint: string,
): Record<string, string> {
  const base = trimDir(mountPoint);
  const nested = [...machine.mounts.keys()]
    .map(trimDir)
    .filter((mp) => mp !== base && (base === '' || mp.startsWith(`${base}/`)));
  const out: Record<string, string> = {};
  for (const path of filesUnder(machine.files, mountPoint)) {
    if (nested.some((mp) => path.startsWith(`${mp}/`))) continue;
    out[path.slice(base.length + 1)] = machine.files.get(path) ?? '';
  }
  return out;
}

/**
 * Acts out `cellops-<name> <args…>` (snapshot-ops.ts; every one of SNAPSHOT_OPERATIONS) on a machine: the same effects, exit statuses and
 * output lines as the script. Unknown names answer 127 like a missing command.
 */
export function actOutDiskOperation(
  machine: SimDiskMachine,
  name: string,
  args: readonly string[],
): SimOutcome {
  const { files } = machine;
  switch (name) {
    case 'mount-data': {
      const [volumeId = '', , mp = ''] = args;
      if (!mp.startsWith('/') || mp === '/') return fail(2, `refusing mount point '${mp}'`);
      const content = machine.attachedVolume(volumeId);
      if (!content) return fail(3, `no block device for ${volumeId} yet`);
      const current = machine.mounts.get(mp);
      if (current !== undefined)
        return current === volumeId
          ? ok(`mounted ${volumeId} at ${mp}\n`)
          : fail(4, `${mp} is already mounted from ${current}, not ${volumeId}`);
      // The mount hides what the root file system had there.
      for (const path of filesUnder(files, mp)) files.delete(path);
      for (const [rel, text] of Object.entries(content)) files.set(`${mp}/${rel}`, text);
      machine.mounts.set(mp, volumeId);
      // The script replaces any fstab line for this mount point with one for the volume (nofail).
      const fstab = (files.get('/etc/fstab') ?? '')
        .split('\n')
        .filter((line) => line !== '' && line.split(/\s+/)[1] !== mp);
      files.set('/etc/fstab', [...fstab, `UUID=${volumeId} ${mp} ext4 defaults,nofail 0 2`, ''].join('\n'));
      return ok(`mounted ${volumeId} at ${mp}\n`);
    }
    case 'keep-chaindata': {
      const [mp = ''] = args;
      if (!machine.mounts.has(mp))
        return fail(2, `${mp} is not a mount point; refusing to delete anything there`);
      const park = `${mp}/.cellops-chaindata`;
      let foundLine = '';
      // A chaindata parked by an interrupted run is picked up again, as the script does.
      if (!pathExists(files, park)) {
        const dirs = new Set(
          filesUnder(files, mp)
            .map((p) => /^(.*?\/klay\/chaindata)\//.exec(p)?.[1])
            .filter((d): d is string => d !== undefined),
        );
        if (dirs.size === 0) return fail(5, `no klay/chaindata directory on the volume mounted at ${mp}`);
        if (dirs.size > 1)
          return fail(6, `several klay/chaindata directories on the volume: ${[...dirs].join(' ')}`);
        const found = [...dirs][0] ?? '';
        foundLine = `chaindata found at ${found}\n`;
        moveTree(files, found, park);
      }
      const removed = childNames(files, mp).filter((n) => n !== 'lost+found' && n !== '.cellops-chaindata');
      for (const path of filesUnder(files, mp))
        if (!path.startsWith(`${mp}/lost+found/`) && !path.startsWith(`${park}/`)) files.delete(path);
      moveTree(files, park, `${mp}/klay/chaindata`);
      return ok(`${foundLine}removed: ${removed.join(' ') || 'nothing'}\nkept: ${mp}/klay/chaindata\n`);
    }
    case 'data-layout': {
      const [mp = ''] = args;
      if (!machine.mounts.has(mp)) return fail(3);
      if (!pathExists(files, `${mp}/klay/chaindata`)) return fail(4);
      return ok(
        `top: ${childNames(files, mp).join(' ')}\nklay: ${childNames(files, `${mp}/klay`).join(' ')}\n`,
      );
    }
    case 'set-datadir': {
      const [conf = '', dir = ''] = args;
      const text = files.get(conf);
      if (text === undefined) return fail(3, `${conf} does not exist`);
      if (files.get(`${conf}.cellops-orig`) === undefined) files.set(`${conf}.cellops-orig`, text);
      // The first DATA_DIR line becomes the new one, later ones go; none: appended.
      const out: string[] = [];
      let done = false;
      for (const line of text.split('\n')) {
        if (!/^\s*(export\s+)?DATA_DIR=/.test(line)) out.push(line);
        else if (!done) {
          out.push(`DATA_DIR=${dir}`);
          done = true;
        }
      }
      if (!done) {
        if (out.at(-1) === '') out.splice(-1, 1, `DATA_DIR=${dir}`, '');
        else out.push(`DATA_DIR=${dir}`);
      }
      files.set(conf, out.join('\n'));
      return ok();
    }
    default:
      return fail(127, `sim: unknown operation cellops-${name}`);
  }
}
