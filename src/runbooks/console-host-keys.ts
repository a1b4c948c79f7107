/**
 * The SSH host keys cloud-init prints on an instance's serial console once sshd's keys exist
 * (cc_keys_to_console / write-ssh-key-fingerprints):
 *
 *   <14>Dec  2 12:00:01 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----     (fingerprints: ignored)
 *   …
 *   -----BEGIN SSH HOST KEY KEYS-----
 *   ecdsa-sha2-nistp256 AAAAE2VjZHNh… root@ip-10-0-2-57
 *   ssh-ed25519 AAAAC3NzaC1lZDI1NTE5… root@ip-10-0-2-57
 *   -----END SSH HOST KEY KEYS-----
 *
 * Console output is untrusted text full of other things (kernel messages, syslog prefixes, CRLF line ends,
 * several boots in one buffer), so reading it is strict about what matters and lenient about the rest:
 * the last complete block wins (the current boot's keys); a line prefix written before the BEGIN marker
 * (`ec2: `, `cloud-init[812]: `) is allowed on the lines of its block; kernel and syslog lines interleaved
 * in the block are skipped; anything else in the block, or a key that does not decode to its type, refuses
 * the whole block rather than pinning half of it. One pass over at most MAX_CONSOLE_CHARS characters.
 */
import { parseHostPublicKey } from '../ports/host-key.js';

export const CONSOLE_KEYS_BEGIN = '-----BEGIN SSH HOST KEY KEYS-----';
export const CONSOLE_KEYS_END = '-----END SSH HOST KEY KEYS-----';
/** EC2 keeps the last 64 KiB of console output; anything beyond a few of those is not a console. */
export const MAX_CONSOLE_CHARS = 1024 * 1024;
/** A cloud-init block lists one key per type sshd has: a handful. More is not a host-key block. */
const MAX_KEYS = 16;
/** `[   12.345678] …` kernel lines and `<14>Dec  2 …` syslog lines that the console interleaves. */
const NOISE_LINE = /^(\[\s*\d+\.\d+\]|<\d{1,3}>)/;
/** A prefix before the BEGIN marker is a log tag, never a whole line of text. */
const MAX_PREFIX_CHARS = 120;

export type ConsoleHostKeys =
  /** `<type> <base64>` of every key in the last complete block, in the order printed. */
  | { readonly kind: 'found'; readonly keys: readonly string[] }
  /** No complete block yet (cloud-init has not got there, or the output is still being written). */
  | { readonly kind: 'absent' }
  /** A block that cannot be trusted, with why; a later complete block may still be found. */
  | { readonly kind: 'invalid'; readonly problem: string };

interface OpenBlock {
  readonly prefix: string;
  readonly line: number;
  readonly keys: string[];
  problem?: string;
}

/** The keys of the last complete host-key block in `console`, or why there is none that can be used. */
export function parseConsoleHostKeys(console: string): ConsoleHostKeys {
  const text = console.length > MAX_CONSOLE_CHARS ? console.slice(-MAX_CONSOLE_CHARS) : console;
  let result: ConsoleHostKeys = { kind: 'absent' };
  let open: OpenBlock | undefined;
  let lineNo = 0;
  for (const raw of text.split('\n')) {
    lineNo++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const begin = line.indexOf(CONSOLE_KEYS_BEGIN);
    if (begin >= 0) {
      // A new BEGIN before an END: the earlier block was cut off (a reboot mid-print); start over.
      const prefix = line.slice(0, begin);
      open =
        prefix.length <= MAX_PREFIX_CHARS
          ? { prefix, line: lineNo, keys: [] }
          : {
              prefix: '',
              line: lineNo,
              keys: [],
              problem: `line ${lineNo}: the BEGIN marker follows too much text`,
            };
      continue;
    }
    if (!open) continue;
    if (line.includes(CONSOLE_KEYS_END)) {
      result = closeBlock(open, lineNo);
      open = undefined;
      continue;
    }
    if (open.problem !== undefined) continue;
    const problem = readBlockLine(open, line, lineNo);
    if (problem !== undefined) open.problem = problem;
  }
  return result;
}

function closeBlock(block: OpenBlock, endLine: number): ConsoleHostKeys {
  if (block.problem !== undefined) return { kind: 'invalid', problem: block.problem };
  if (block.keys.length === 0)
    return { kind: 'invalid', problem: `the block of lines ${block.line}–${endLine} lists no key` };
  return { kind: 'found', keys: [...new Set(block.keys)] };
}

/** Adds the key on `line` to the block, skips noise, or says why the block cannot be used. */
function readBlockLine(block: OpenBlock, line: string, lineNo: number): string | undefined {
  let body = line;
  if (block.prefix.length > 0 && body.startsWith(block.prefix)) body = body.slice(block.prefix.length);
  body = body.trim();
  if (body.length === 0 || NOISE_LINE.test(body)) return undefined;
  const key = parseHostPublicKey(body);
  if (typeof key === 'string') return `line ${lineNo}: ${key}`;
  if (block.keys.length >= MAX_KEYS) return `more than ${MAX_KEYS} keys in one block`;
  block.keys.push(key.line);
  return undefined;
}
