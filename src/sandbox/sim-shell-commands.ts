/**
 * The simulated hosts' shell interpreter: exactly the command forms src/runbooks/node-ops.ts builds, every
 * one `sudo -n <tool> <args>`, acted out on a SimHost. Any other form answers exit status 127, so a
 * runbook that drifts from those forms fails loudly here instead of on a real node.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import type { SimHost } from './sim-host.js';
import { splitShellWords } from '../ports/shell-command.js';

export interface SimOutcome {
  readonly exitCode: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

/**
 * What one tool makes of its arguments; undefined when they are not a form the runbooks build.
 * `stdin` is the command's standard input, if any.
 */
type Tool = (host: SimHost, rest: readonly string[], stdin: string | undefined) => SimOutcome | undefined;

/** Interprets a plain command line on a host (the privileged `cellops-*` scripts are sim-disks.ts's). */
export function interpretShellCommand(host: SimHost, command: string, stdin: string | undefined): SimOutcome {
  const words = splitShellWords(command);
  if (!words) return notUnderstood(command);
  if (words[0] !== 'sudo')
    return { exitCode: 1, stderr: `sim: ${words[0] ?? ''}: privileged commands must run through sudo -n` };
  const args = words[1] === '-n' ? words.slice(2) : words.slice(1);
  const [name, ...rest] = args;
  const tool = name === undefined ? undefined : toolNamed(name);
  return tool?.(host, rest, stdin) ?? notUnderstood(words.join(' '));
}

function notUnderstood(command: string): SimOutcome {
  return { exitCode: 127, stderr: `sim: command form not understood: ${command}` };
}

function toolNamed(name: string): Tool | undefined {
  switch (name) {
    case 'systemctl':
      return systemctl;
    case 'test':
      return test;
    case 'cat':
      return cat;
    case 'install':
      return install;
    case 'sha256sum':
      return sha256sum;
    case 'stat':
      return stat;
    case 'mv':
      return mv;
    case 'rm':
      return rm;
    case 'ip':
      return ip;
    case 'arping':
      return arping;
    case 'pgrep':
      return pgrep;
    case 'sync':
      return (_host, rest) => (rest.length === 0 ? { exitCode: 0 } : undefined);
    case 'fsfreeze':
      return fsfreeze;
    case 'df':
      return df;
    case 'find':
      return find;
    case 'openssl':
      return openssl;
    case 'kcn':
    case 'kpn':
      return attach(name);
    default:
      return undefined;
  }
}

/** An absolute path, else undefined. */
function absolute(p: string | undefined): string | undefined {
  return p !== undefined && p.startsWith('/') ? p : undefined;
}

function missing(tool: string, p: string): SimOutcome {
  return { exitCode: 1, stderr: `${tool}: ${p}: No such file or directory` };
}

function isDir(host: SimHost, p: string): boolean {
  return [...host.files.keys()].some((f) => f.startsWith(`${p.replace(/\/+$/, '')}/`));
}

const systemctl: Tool = (host, rest) => {
  const [action, unitWord] = rest;
  const unit = unitWord?.replace(/\.service$/, '');
  if (rest.length !== 2 || unit === undefined) return undefined;
  const known = unit === host.service;
  if (action === 'is-active') {
    const active = known && host.isRunning();
    return { exitCode: active ? 0 : 3, stdout: active ? 'active\n' : 'inactive\n' };
  }
  if (!known)
    return {
      exitCode: 5,
      stderr: `Failed to ${action} ${unit}.service: Unit ${unit}.service not found.`,
    };
  if (action === 'start') host.startDaemon();
  else if (action === 'stop') host.stopDaemon();
  // Whether the unit starts at boot: the simulated machines never reboot, so there is nothing to keep.
  else if (action !== 'enable' && action !== 'disable') return undefined;
  return { exitCode: 0 };
};

/** fsfreeze -f|-u -- MOUNTPOINT: nothing to block in the sim, but the form is checked. */
const fsfreeze: Tool = (_host, rest) =>
  rest.length === 3 && (rest[0] === '-f' || rest[0] === '-u') && rest[1] === '--' && absolute(rest[2])
    ? { exitCode: 0 }
    : undefined;

const test: Tool = (host, rest) => {
  const p = absolute(rest[1]);
  if (rest.length !== 2 || rest[0] !== '-e' || !p) return undefined;
  return { exitCode: host.files.has(p) || isDir(host, p) ? 0 : 1 };
};

const cat: Tool = (host, rest) => {
  const p = absolute(rest[1]);
  if (rest.length !== 2 || rest[0] !== '--' || !p) return undefined;
  const file = host.files.get(p);
  return file ? { exitCode: 0, stdout: file.content } : missing('cat', p);
};

/** install -D -m 0600 -- /dev/stdin PATH (or without -D); install -m 0600 -- /dev/null PATH (an empty file) */
const install: Tool = (host, rest, stdin) => {
  const flags = rest.slice(0, -3);
  const [dashes, source, p] = rest.slice(-3);
  if (dashes !== '--') return undefined;
  const mode = flags[flags.indexOf('-m') + 1];
  if (!flags.includes('-m') || !mode || !/^0?[0-7]{3}$/.test(mode) || !absolute(p)) return undefined;
  if (source !== '/dev/stdin' && source !== '/dev/null') return undefined;
  if (flags.filter((f) => f !== '-D').length !== 2) return undefined;
  if (source === '/dev/null') {
    host.write(p ?? '', '', parseInt(mode, 8));
    return { exitCode: 0 };
  }
  if (stdin === undefined) return { exitCode: 1, stderr: 'install: no input on /dev/stdin (sim)' };
  host.write(p ?? '', stdin, parseInt(mode, 8));
  return { exitCode: 0 };
};

/** df -Pk -- DIR: a roomy disk (the sandbox's machines never run out of space). */
const df: Tool = (host, rest) => {
  const dir = absolute(rest[2]);
  if (rest.length !== 3 || rest[0] !== '-Pk' || rest[1] !== '--' || !dir) return undefined;
  return {
    exitCode: 0,
    stdout: `Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/sim-${host.name} 1048576000 209715200 838860800      20% /\n`,
  };
};

/** find DIR -maxdepth 2 -name PATTERN, PATTERN a `*word*` glob as the runbooks build it. */
const find: Tool = (host, rest) => {
  const [dir, maxdepth, depth, name, pattern] = rest;
  const base = absolute(dir)?.replace(/\/+$/, '');
  if (rest.length !== 5 || !base || maxdepth !== '-maxdepth' || depth !== '2' || name !== '-name' || !pattern)
    return undefined;
  const glob = new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  const found = [...host.files.keys()].filter((path) => {
    if (!path.startsWith(`${base}/`)) return false;
    const rel = path.slice(base.length + 1).split('/');
    return rel.length <= 2 && glob.test(rel.at(-1) ?? '');
  });
  return { exitCode: 0, stdout: found.map((path) => `${path}\n`).join('') };
};

/** openssl rand -hex -out PATH 32: 64 random hex characters and a newline into the file, mode kept. */
const openssl: Tool = (host, rest) => {
  const [rand, hex, out, p, bytes] = rest;
  if (
    rest.length !== 5 ||
    rand !== 'rand' ||
    hex !== '-hex' ||
    out !== '-out' ||
    !absolute(p) ||
    bytes !== '32'
  )
    return undefined;
  const key = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
  host.write(p ?? '', `${key}\n`, host.files.get(p ?? '')?.mode ?? 0o644);
  return { exitCode: 0 };
};

/** kcn|kpn attach --exec admin.nodeInfo DATADIR/klay.ipc: the node's kni URL, as the IPC console prints it. */
function attach(binary: string): Tool {
  return (host, rest) => {
    const [sub, exec, js, ipc] = rest;
    if (
      rest.length !== 4 ||
      sub !== 'attach' ||
      exec !== '--exec' ||
      js !== 'admin.nodeInfo' ||
      !absolute(ipc)
    )
      return undefined;
    if (!host.isRunning())
      return {
        exitCode: 1,
        stderr: `Fatal: Unable to attach to remote ${binary}: dial unix ${ipc ?? ''}: connect: no such file or directory`,
      };
    const id = bytesToHex(sha256(utf8ToBytes(`node-id:${host.loadedAddress() ?? ''}`))).repeat(2);
    const kind = host.kind === 'pn' ? 'pn' : 'cn';
    return {
      exitCode: 0,
      stdout: `${JSON.stringify({ id, kni: `kni://${id}@${host.address}:32323?discport=0&ntype=${kind}`, nodeAddress: host.loadedAddress() })}\n`,
    };
  };
}

const sha256sum: Tool = (host, rest) => {
  const p = absolute(rest[1]);
  if (rest.length !== 2 || rest[0] !== '--' || !p) return undefined;
  const file = host.files.get(p);
  return file
    ? { exitCode: 0, stdout: `${bytesToHex(sha256(utf8ToBytes(file.content)))}  ${p}\n` }
    : missing('sha256sum', p);
};

/** stat -c %Y -- PATH (mtime) | stat -c %s -- PATH (size) */
const stat: Tool = (host, rest) => {
  const p = absolute(rest[3]);
  if (
    rest.length !== 4 ||
    rest[0] !== '-c' ||
    (rest[1] !== '%Y' && rest[1] !== '%s') ||
    rest[2] !== '--' ||
    !p
  )
    return undefined;
  const file = host.files.get(p);
  if (!file) return missing('stat', p);
  const value = rest[1] === '%s' ? utf8ToBytes(file.content).length : Math.floor(file.mtimeMs / 1000);
  return { exitCode: 0, stdout: `${value}\n` };
};

/** mv -- FROM TO */
const mv: Tool = (host, rest) => {
  const from = absolute(rest[1]);
  const to = absolute(rest[2]);
  if (rest.length !== 3 || rest[0] !== '--' || !from || !to) return undefined;
  const file = host.files.get(from);
  if (!file) return missing('mv', from);
  host.files.delete(from);
  host.files.set(to, file);
  return { exitCode: 0 };
};

/** rm -f -- PATH */
const rm: Tool = (host, rest) => {
  const p = absolute(rest[2]);
  if (rest.length !== 3 || rest[0] !== '-f' || rest[1] !== '--' || !p) return undefined;
  host.files.delete(p);
  return { exitCode: 0 };
};

/** ip addr add|del CIDR dev DEV   |   ip -o addr show dev DEV */
const ip: Tool = (host, rest) => {
  if (
    rest[0] === '-o' &&
    rest[1] === 'addr' &&
    rest[2] === 'show' &&
    rest[3] === 'dev' &&
    rest.length === 5
  ) {
    const device = rest[4] ?? '';
    const cidrs = host.devices.get(device);
    if (!cidrs) return { exitCode: 1, stderr: `Device "${device}" does not exist.` };
    const stdout = [...cidrs]
      .map(
        (cidr, i) =>
          `${i + 2}: ${device}    inet ${cidr} brd + scope global ${device}\\       valid_lft forever preferred_lft forever\n`,
      )
      .join('');
    return { exitCode: 0, stdout };
  }
  const [addr, action, cidr, dev, device] = rest;
  if (rest.length !== 5 || addr !== 'addr' || dev !== 'dev' || !cidr || !device) return undefined;
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr))
    return { exitCode: 1, stderr: `Error: any valid prefix is expected rather than "${cidr}".` };
  const cidrs = host.devices.get(device);
  if (!cidrs) return { exitCode: 1, stderr: `Cannot find device "${device}"` };
  if (action === 'add') {
    if (cidrs.has(cidr)) return { exitCode: 2, stderr: 'RTNETLINK answers: File exists' };
    cidrs.add(cidr);
    return { exitCode: 0 };
  }
  if (action === 'del') {
    if (!cidrs.delete(cidr))
      return { exitCode: 2, stderr: 'RTNETLINK answers: Cannot assign requested address' };
    return { exitCode: 0 };
  }
  return undefined;
};

/** arping -U -c N -I DEV IP */
const arping: Tool = (host, rest) => {
  if (!host.arping) return { exitCode: 1, stderr: 'sudo: arping: command not found' };
  const [u, c, count, i, device, address] = rest;
  if (rest.length !== 6 || u !== '-U' || c !== '-c' || !/^\d+$/.test(count ?? '') || i !== '-I' || !address)
    return undefined;
  if (![...(host.devices.get(device ?? '') ?? [])].some((cidr) => cidr.startsWith(`${address}/`)))
    return { exitCode: 2, stderr: `arping: ${address} is not an address of ${device ?? ''}` };
  return {
    exitCode: 0,
    stdout: `ARPING ${address} from ${address} ${device ?? ''}\nSent ${count ?? ''} probes (${count ?? ''} broadcast(s))\n`,
  };
};

/** pgrep -x -- NAME: the daemon's process is kcn (CN, standby) or kpn (PN); 1 and no output when none. */
const pgrep: Tool = (host, rest) => {
  const [x, dashes, name] = rest;
  if (rest.length !== 3 || x !== '-x' || dashes !== '--' || !name) return undefined;
  const binary = host.kind === 'pn' ? 'kpn' : 'kcn';
  return host.isRunning() && name === binary ? { exitCode: 0, stdout: '4242\n' } : { exitCode: 1 };
};
