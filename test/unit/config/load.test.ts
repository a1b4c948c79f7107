import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { EXAMPLE, problemsOf, withChange } from '../../support/config-text.js';

describe('configuration', () => {
  it('accepts the documented example and resolves defaults in milliseconds', () => {
    const config = parseConfigText(EXAMPLE, 'cellops.example.yaml');
    expect(config.slack.approvalTimeoutMs).toBe(900_000);
    expect(config.monitor).toMatchObject({
      intervalMs: 3_000,
      lagBlocks: 10,
      forMs: 10_000,
      stallMs: 15_000,
      failures: 3,
    });
    expect(config.nodes.cn1?.endpoint.metricsUrl).toBe('http://10.0.1.11:61001/metrics');
    expect(config.nodes.cn1s?.endpoint.binary).toBe('kcn');
    expect(config.nodes.pn1?.service).toBe('kpnd');
    expect(config.redisPrefix).toBe('cellops:my-core-cell:');
  });

  it('accepts the configuration exactly as the short example users copy', () => {
    const text = readFileSync(new URL('../../fixtures/design-example.yaml', import.meta.url), 'utf8');
    const config = parseConfigText(text, 'design-example.yaml');
    expect(Object.keys(config.nodes)).toEqual(['cn1', 'cn1s', 'cn2', 'pn1']);
    expect(config.ssh.serviceCommand).toBe('sudo systemctl {action} {service}');
    expect(config.nodes.cn2?.failover?.mode).toBe('snapshot');
  });

  it('fills defaults the example spells out when they are left out', () => {
    const config = parseConfigText(
      withChange((doc) => {
        delete doc.monitor;
        delete doc.redis;
        delete doc.slack.operators;
        delete doc.ssh.serviceCommand;
        delete doc.nodes.cn1.metrics;
        delete doc.nodes.cn1s.service;
      }),
      'cellops.yaml',
    );
    expect(config.monitor.intervalMs).toBe(3_000);
    expect(config.redisPrefix).toBe('cellops:my-core-cell:');
    expect(config.slack.operators).toEqual({ users: [], usergroups: [] });
    expect(config.ssh.serviceCommand).toBe('sudo -n systemctl {action} {service}');
    expect(config.nodes.cn1s?.service).toBe('kcnd');
  });

  it('names the file, the key path and what would be right for a standby that is not a node', () => {
    const problems = problemsOf(withChange((doc) => (doc.nodes.cn1.failover.standby = 'cn9')));
    expect(problems).toEqual([
      'cellops.yaml: nodes.cn1.failover.standby: "cn9" is not a node (known: cn1, cn1s, cn2, pn1)',
    ]);
  });

  it('refuses a standby whose role is not standby', () => {
    expect(problemsOf(withChange((doc) => (doc.nodes.cn1.failover.standby = 'pn1')))).toEqual([
      'cellops.yaml: nodes.cn1.failover.standby: "pn1" has role pn, not standby',
    ]);
  });

  it('checks backup hosts, snapshot sources and what each IP method needs', () => {
    const problems = problemsOf(
      withChange((doc) => {
        doc.nodes.cn1.failover.nodekeyBackup.host = 'nas';
        doc.nodes.cn2.failover.snapshotFrom = ['cn1s'];
        doc.nodes.cn1.failover.ip = { method: 'alias', address: '10.0.1.100' };
      }),
    );
    expect(problems).toContain(
      'cellops.yaml: nodes.cn1.failover.ip.address: "10.0.1.100" must be an IPv4 address with prefix, e.g. 10.0.1.100/24',
    );
    expect(problems).toContain('cellops.yaml: nodes.cn1.failover.ip.device: is required (string)');
  });

  it('reports cross-reference problems once the shape is right', () => {
    const problems = problemsOf(
      withChange((doc) => {
        doc.nodes.cn1.failover.nodekeyBackup.host = 'nas';
        doc.nodes.cn2.failover.snapshotFrom = ['cn1s'];
        delete doc.nodes.cn2.instanceId;
      }),
    );
    expect(problems).toEqual([
      'cellops.yaml: nodes.cn1.failover.nodekeyBackup.host: "nas" is not a node (known: cn1, cn1s, cn2, pn1)',
      'cellops.yaml: nodes.cn2.instanceId: is required in mode snapshot (the failed instance is fenced by stopping it)',
      'cellops.yaml: nodes.cn2.failover.snapshotFrom.0: "cn1s" has role standby, not pn',
    ]);
  });

  it('reports unknown keys, bad durations and bad ids together', () => {
    const problems = problemsOf(
      withChange((doc) => {
        doc.slack.aprovers = doc.slack.approvers;
        doc.monitor.stall = '15 seconds';
        doc.slack.channel = '#alerts';
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'cellops.yaml: slack.channel: "#alerts" must be a Slack channel id (C… or G…)',
        'cellops.yaml: slack: unknown key "aprovers" (check the spelling against cellops.example.yaml)',
        'cellops.yaml: monitor.stall: "15 seconds" is not a duration (write e.g. 500ms, 3s, 10m, 1h)',
      ]),
    );
  });

  it('points at the line of a YAML syntax error', () => {
    const problems = problemsOf('cell: x\nslack: [unclosed\n');
    expect(problems[0]).toMatch(/^cellops\.yaml:\d+:\d+: /);
  });

  it('refuses a file that is not a mapping', () => {
    expect(problemsOf('- a\n- b\n')).toEqual([
      'cellops.yaml: must be a YAML mapping with cell, slack, ssh and nodes (see cellops.example.yaml)',
    ]);
  });
});
