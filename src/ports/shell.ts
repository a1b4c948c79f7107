/**
 * Remote command execution on the cell's hosts. The real adapter is ssh2 (src/adapters/ssh); the
 * sandbox has simulated hosts; unit tests use test/fakes/fake-shell.ts.
 *
 * Commands are `ShellCommand`s, never plain strings: they are built with the `sh` tagged template
 * (src/ports/shell-command.ts), which single-quotes every interpolated value, so no text that came from
 * Slack or from a node can change the shape of a command.
 */
import type { ShellCommand } from './shell-command.js';

/** A host as the inventory names it, and the address to reach it at. */
export interface HostRef {
  /** Inventory name, e.g. `cn1s`. Used in messages and errors. */
  readonly name: string;
  /** IP address or DNS name that SSH connects to. */
  readonly address: string;
  /**
   * Host keys pinned for this host, each `<type> <base64>` as in a `.pub` file (e.g. learned from the
   * instance's console). When present, the host must present one of exactly these keys and the known_hosts
   * file is not consulted for it; any other key is refused before a command is sent.
   */
  readonly hostKeys?: readonly string[];
}

/**
 * A run's fencing token (src/locks) for the cell it acts on. Shells that can hand it to the host do (the
 * host helper, deploy/host/cellops-host, refuses a token lower than one it has already seen); others ignore
 * it.
 */
export interface Fence {
  /** The cell whose lock issued the token. */
  readonly scope: string;
  readonly token: number;
}

export interface ExecOptions {
  /** Kill the command and reject with a timeout error after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Written to the command's standard input, then closed. How secrets travel: never on a command line. */
  readonly stdin?: string | Uint8Array;
  readonly signal?: AbortSignal;
  /** The fencing token of the run the command belongs to; absent outside a run (monitor probes). */
  readonly fence?: Fence;
}

export interface ExecResult {
  readonly exitCode: number;
  /** Captured standard output, bounded in size (see `truncated`). */
  readonly stdout: string;
  readonly stderr: string;
  /** True when either stream exceeded the adapter's capture bound and was cut. */
  readonly truncated: boolean;
  readonly durationMs: number;
}

export interface Shell {
  /**
   * Runs `command` on `host` and resolves with its exit status and output; a non-zero exit status is a
   * result, not an error. Rejects only when the command could not be run (unreachable host, refused host
   * key, authentication failure, timeout): those rejections are `CellopsError`s naming the host.
   */
  exec(host: HostRef, command: ShellCommand, options?: ExecOptions): Promise<ExecResult>;
  /**
   * The host keys (`<type> <base64>`) the known_hosts file lists for `address` on the SSH port, patterns
   * included. Optional: shells without a known_hosts file (simulations) leave it out, which reads as none.
   */
  knownHostKeys?(address: string): Promise<readonly string[]>;
  /** Closes every connection this shell opened. */
  close(): Promise<void>;
}
