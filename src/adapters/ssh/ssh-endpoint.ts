/** An SSH endpoint (a cell host or the bastion) and how messages name it. */
import type { CellopsConfig } from '../../config/config.js';

/** The ssh section of the configuration, as every part of the SSH adapter reads it. */
export type SshSettings = CellopsConfig['ssh'];

export interface Endpoint {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** Pinned host keys (`<type> <base64>`): only these are accepted, known_hosts is not consulted. */
  readonly hostKeys?: readonly string[];
}

export function where(endpoint: Endpoint): string {
  const port = endpoint.port === 22 ? '' : ` port ${endpoint.port}`;
  return endpoint.name === endpoint.address
    ? `${endpoint.address}${port}`
    : `${endpoint.name} (${endpoint.address}${port})`;
}
