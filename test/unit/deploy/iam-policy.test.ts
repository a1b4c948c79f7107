/**
 * deploy/iam-policy.json against the EC2 adapter: the policy grants exactly the actions the adapter can
 * send (a new call without a policy line fails here, and so does a line nothing uses), and every action
 * that creates or changes a resource is conditioned on the cellops tags where AWS allows it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ADAPTER_DIR = new URL('../../../src/adapters/ec2/', import.meta.url);
const POLICY = new URL('../../../deploy/iam-policy.json', import.meta.url);

interface Statement {
  readonly Sid: string;
  readonly Effect: string;
  readonly Action: string | readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Record<string, Record<string, unknown>>;
}

const policy = JSON.parse(readFileSync(POLICY, 'utf8')) as { Statement: readonly Statement[] };
const list = (value: string | readonly string[]): readonly string[] =>
  typeof value === 'string' ? [value] : value;

/** The SDK's waiters poll the matching Describe call. */
const WAITER_ACTION: Record<string, string> = {
  Instance: 'DescribeInstances',
  Volume: 'DescribeVolumes',
  Snapshot: 'DescribeSnapshots',
  Image: 'DescribeImages',
};

/** Every EC2 action the adapter's source can send: its `XCommand` classes and its waiters. */
function adapterActions(): Set<string> {
  const actions = new Set<string>();
  for (const file of readdirSync(ADAPTER_DIR).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(new URL(file, ADAPTER_DIR), 'utf8');
    for (const match of text.matchAll(/\bnew ([A-Z][A-Za-z]+)Command\(/g)) actions.add(`ec2:${match[1]}`);
    for (const match of text.matchAll(/\bwaitUntil(Instance|Volume|Snapshot|Image)[A-Z][A-Za-z]*\b/g)) {
      const describe = WAITER_ACTION[match[1] ?? ''];
      if (describe) actions.add(`ec2:${describe}`);
    }
    // Tags given at creation (TagSpecifications) are authorized as ec2:CreateTags on the new resource.
    if (text.includes('TagSpecifications')) actions.add('ec2:CreateTags');
  }
  return actions;
}

function statementsFor(action: string): readonly Statement[] {
  return policy.Statement.filter((s) => list(s.Action).includes(action));
}

const conditionText = (s: Statement): string => JSON.stringify(s.Condition ?? {});

describe('the IAM policy in deploy/', () => {
  it('grants exactly the EC2 actions the adapter can send, and only Allow', () => {
    const granted = new Set(policy.Statement.flatMap((s) => list(s.Action)));
    expect([...granted].sort()).toEqual([...adapterActions()].sort());
    expect(policy.Statement.every((s) => s.Effect === 'Allow')).toBe(true);
    expect(policy.Statement.flatMap((s) => list(s.Action)).every((a) => !a.includes('*'))).toBe(true);
  });

  it('lets cellops create a volume, snapshot, image or instance only with its run tag on the request', () => {
    for (const action of ['ec2:CreateVolume', 'ec2:CreateSnapshot', 'ec2:CreateImage', 'ec2:RunInstances']) {
      const created = statementsFor(action).filter((s) =>
        list(s.Resource).some(
          (r) =>
            /:(volume|snapshot|image|instance)\/\*$/.test(r) && !/ImageSource|SnapshotSource/.test(s.Sid),
        ),
      );
      expect(created.length, action).toBeGreaterThan(0);
      expect(
        created.some((s) => conditionText(s).includes('aws:RequestTag/cellops:run-id')),
        `${action} conditioned on the run tag`,
      ).toBe(true);
    }
  });

  it('tags only at creation, fences and reads consoles only of the cell, attaches only run-tagged volumes', () => {
    for (const s of statementsFor('ec2:CreateTags')) expect(conditionText(s)).toContain('ec2:CreateAction');
    for (const action of ['ec2:StopInstances', 'ec2:GetConsoleOutput'])
      for (const s of statementsFor(action)) expect(conditionText(s), action).toContain('cellops:cell');
    const attach = statementsFor('ec2:AttachVolume');
    expect(attach.length).toBeGreaterThan(0);
    for (const s of attach) expect(conditionText(s)).toContain('aws:ResourceTag/cellops:run-id');
  });

  it('lets cleanup terminate and delete only resources tagged with a run id of this cell', () => {
    for (const action of ['ec2:TerminateInstances', 'ec2:DeleteVolume', 'ec2:DeleteSnapshot']) {
      const statements = statementsFor(action);
      expect(statements.length, action).toBeGreaterThan(0);
      for (const s of statements) {
        expect(conditionText(s), action).toContain('aws:ResourceTag/cellops:run-id');
        expect(conditionText(s), action).toContain('aws:ResourceTag/cellops:cell');
      }
    }
  });
});
