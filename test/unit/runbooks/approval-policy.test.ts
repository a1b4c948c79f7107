import { describe, expect, it } from 'vitest';
import { createApprovalPolicy } from '../../../src/runbooks/approval-policy.js';
import type { CellopsConfig } from '../../../src/config/config.js';

const slack: CellopsConfig['slack'] = {
  channel: 'C0ALERTS',
  approvers: { users: ['U0AAA', 'U0BBB'], usergroups: ['S0ONCALL'] },
  operators: { users: ['U0CCC'], usergroups: [] },
  fourEyes: true,
  approvals: 1,
  approvalTimeoutMs: 900_000,
};

const directory = {
  usergroupMembers: async (id: string) => {
    if (id === 'S0ONCALL') return ['U0GRP'];
    throw new Error(`no such group ${id}`);
  },
};

const run = { id: 'r1', requester: 'U0AAA' };

describe('approval policy', () => {
  const policy = createApprovalPolicy({ slack, directory });

  it('lets operators and approvers start runbooks, and refuses anyone else with the reason', async () => {
    expect(await policy.canStart('U0CCC')).toEqual({ allowed: true });
    expect(await policy.canStart('U0BBB')).toEqual({ allowed: true });
    expect(await policy.canStart('U0GRP')).toEqual({ allowed: true });
    const refused = await policy.canStart('U0NOBODY');
    expect(refused).toEqual({
      allowed: false,
      reason: expect.stringContaining('not an operator or approver'),
    });
  });

  it('lets approvers, also through a user group, approve another person’s run', async () => {
    expect(await policy.canApprove('U0BBB', run)).toEqual({ allowed: true });
    expect(await policy.canApprove('U0GRP', run)).toEqual({ allowed: true });
  });

  it('refuses the requester under four-eyes, and allows them without it', async () => {
    const refused = await policy.canApprove('U0AAA', run);
    expect(refused).toEqual({ allowed: false, reason: expect.stringContaining('fourEyes') });
    const relaxed = createApprovalPolicy({ slack: { ...slack, fourEyes: false }, directory });
    expect(await relaxed.canApprove('U0AAA', run)).toEqual({ allowed: true });
  });

  it('refuses operators and unknown users as approvers, naming who may approve', async () => {
    for (const user of ['U0CCC', 'U0NOBODY']) {
      const verdict = await policy.canApprove(user, run);
      expect(verdict).toEqual({ allowed: false, reason: expect.stringContaining('not in slack.approvers') });
      expect(verdict.allowed ? '' : verdict.reason).toContain('U0AAA, U0BBB');
    }
  });

  it('lets the requester and other operators abort, but not strangers', async () => {
    expect(await policy.canAbort('U0AAA', run)).toEqual({ allowed: true });
    expect(await policy.canAbort('U0CCC', run)).toEqual({ allowed: true });
    expect((await policy.canAbort('U0NOBODY', run)).allowed).toBe(false);
  });

  it('says so when a user group could not be read', async () => {
    const broken = createApprovalPolicy({
      slack: { ...slack, approvers: { users: [], usergroups: ['S0GONE'] } },
      directory,
    });
    const verdict = await broken.canApprove('U0GRP', run);
    expect(verdict.allowed ? '' : verdict.reason).toContain(
      'could not read the members of user group S0GONE',
    );
  });
});
