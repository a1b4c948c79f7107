/**
 * Reads cellops.yaml, validates it against the schema and the cross-references between nodes, and
 * resolves it. Every problem is reported as `file: key.path: what is wrong (what would be right)`, all at
 * once, so an operator fixes the file in one pass; the bot does not start with any of them.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type ParsedConfig } from './schema.js';
import { resolveConfig, type CellopsConfig } from './config.js';

type Issue = z.core.$ZodIssue;

function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function describeIssue(issue: Issue, raw: unknown): string {
  const here = valueAt(raw, issue.path);
  // A key that names an environment variable may hold the secret itself by mistake: never echo it.
  if (/Env$/.test(String(issue.path.at(-1))) && typeof here === 'string')
    return `${issue.message} (value not shown)`;
  switch (issue.code) {
    case 'invalid_type':
      if (here === undefined) return `is required (${issue.expected})`;
      return `must be ${issue.expected === 'object' ? 'a mapping' : issue.expected}, not ${JSON.stringify(here)}`;
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling against cellops.example.yaml)`;
    case 'invalid_value':
      return `${JSON.stringify(here)} is not allowed (use one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')})`;
    case 'invalid_union':
      if (issue.path.at(-1) === 'ip' || (here !== null && typeof here === 'object' && 'method' in here))
        return 'needs method alias (address, device), eip (allocationId) or manual (instructions)';
      return `${JSON.stringify(here)} does not match any allowed form`;
    default:
      return here === undefined ? issue.message : `${JSON.stringify(here)} ${issue.message}`;
  }
}

/** Problems no schema can see: names that must refer to other nodes, and what each mode needs. */
export function crossReferenceProblems(parsed: ParsedConfig): string[] {
  const problems: string[] = [];
  const names = Object.keys(parsed.nodes);
  const known = `known: ${names.join(', ') || 'none'}`;
  const isNode = (name: string) => Object.hasOwn(parsed.nodes, name);

  if (parsed.ssh.privateKey === undefined && !parsed.ssh.agent)
    problems.push('ssh.privateKey: is required (the path of the key file), unless ssh.agent is true');
  if (!Object.values(parsed.nodes).some((n) => n.role === 'pn')) {
    problems.push('nodes: there is no node with role pn (the monitor needs a PN as the reference height)');
  }
  for (const [name, node] of Object.entries(parsed.nodes)) {
    const at = `nodes.${name}`;
    const failover = node.failover;
    if (!failover) continue;
    if (node.role !== 'cn')
      problems.push(`${at}.failover: only nodes with role cn fail over (this one has role ${node.role})`);
    if (!isNode(failover.nodekeyBackup.host)) {
      problems.push(
        `${at}.failover.nodekeyBackup.host: "${failover.nodekeyBackup.host}" is not a node (${known})`,
      );
    }
    if (failover.mode === 'standby') {
      if (failover.standby === undefined) {
        problems.push(
          `${at}.failover.standby: is required in mode standby (the name of a node with role standby)`,
        );
      } else if (!isNode(failover.standby)) {
        problems.push(`${at}.failover.standby: "${failover.standby}" is not a node (${known})`);
      } else if (parsed.nodes[failover.standby]?.role !== 'standby') {
        problems.push(
          `${at}.failover.standby: "${failover.standby}" has role ${parsed.nodes[failover.standby]?.role}, not standby`,
        );
      }
    } else {
      if (failover.launch === undefined) {
        problems.push(
          `${at}.failover.launch: is required in mode snapshot (instanceType, subnetId, securityGroupIds)`,
        );
      }
      if (node.instanceId === undefined) {
        problems.push(
          `${at}.instanceId: is required in mode snapshot (the failed instance is fenced by stopping it)`,
        );
      }
      if (failover.ip.method !== 'eip') {
        problems.push(
          `${at}.failover.ip.method: mode snapshot moves an Elastic IP; use method eip with allocationId`,
        );
      }
      const sources = failover.snapshotFrom ?? [];
      if (sources.length === 0) {
        problems.push(
          `${at}.failover.snapshotFrom: is required in mode snapshot (PNs whose data volume may be snapshotted)`,
        );
      }
      sources.forEach((pn, i) => {
        const source = parsed.nodes[pn];
        if (!source) problems.push(`${at}.failover.snapshotFrom.${i}: "${pn}" is not a node (${known})`);
        else if (source.role !== 'pn')
          problems.push(`${at}.failover.snapshotFrom.${i}: "${pn}" has role ${source.role}, not pn`);
        else if (source.dataVolumeId === undefined) {
          problems.push(
            `nodes.${pn}.dataVolumeId: is required because ${at} snapshots it (the EBS volume holding DATA_DIR)`,
          );
        }
      });
    }
  }
  return problems;
}

/** Parses and validates configuration text. `file` is only used in messages. */
export function parseConfigText(text: string, file: string): CellopsConfig {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${e.message.split('\n')[0] ?? e.message}`;
      }),
    );
  }
  const raw: unknown = document.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([
      `${file}: must be a YAML mapping with cell, slack, ssh and nodes (see cellops.example.yaml)`,
    ]);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${file}: ${formatPath(issue.path)}: ${describeIssue(issue, raw)}`),
    );
  }
  const problems = crossReferenceProblems(result.data);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${file}: ${p}`));
  return resolveConfig(result.data);
}

export async function loadConfigFile(path: string): Promise<CellopsConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'permission denied'
          : `cannot be read (${code ?? 'error'})`;
    throw new ConfigError([
      `${path}: ${why}; set CELLOPS_CONFIG to your configuration file, or copy cellops.example.yaml`,
    ]);
  }
  return parseConfigText(text, path);
}
