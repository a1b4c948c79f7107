/**
 * Who may start runs, approve steps, and abort or resume runs (README §The life of a run): decided here,
 * in the engine, never in Slack handlers. Users come from configuration, directly or through Slack user
 * groups read with a directory port (the bot's adapter caches usergroups.users.list).
 */
import type { CellopsConfig, UserSet } from '../config/config.js';
import { describeError } from '../errors.js';
import type { RunRecord } from './types.js';

export type PolicyVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

/** Slack user group membership. */
export interface UsergroupDirectory {
  usergroupMembers(usergroupId: string): Promise<readonly string[]>;
}

export interface ApprovalPolicy {
  /** Operators and approvers may start runbooks. */
  canStart(user: string): Promise<PolicyVerdict>;
  /** Approvers may approve, except (with `fourEyes`) the person who started the run. */
  canApprove(user: string, run: Pick<RunRecord, 'id' | 'requester'>): Promise<PolicyVerdict>;
  /** Operators and approvers may abort or resume a run, including the requester of their own run. */
  canAbort(user: string, run: Pick<RunRecord, 'id' | 'requester'>): Promise<PolicyVerdict>;
}

export interface ApprovalPolicyDeps {
  readonly slack: CellopsConfig['slack'];
  readonly directory: UsergroupDirectory;
}

const ALLOWED: PolicyVerdict = { allowed: true };

export function createApprovalPolicy(deps: ApprovalPolicyDeps): ApprovalPolicy {
  const { slack, directory } = deps;

  /** Whether `user` is in the set, and what went wrong reading a group (so a refusal can say so). */
  const member = async (user: string, set: UserSet): Promise<{ member: boolean; problems: string[] }> => {
    if (set.users.includes(user)) return { member: true, problems: [] };
    const problems: string[] = [];
    for (const group of set.usergroups) {
      try {
        if ((await directory.usergroupMembers(group)).includes(user)) return { member: true, problems: [] };
      } catch (error) {
        problems.push(`could not read the members of user group ${group}: ${describeError(error)}`);
      }
    }
    return { member: false, problems };
  };

  const refuse = (reason: string, problems: readonly string[]): PolicyVerdict => ({
    allowed: false,
    reason: problems.length === 0 ? reason : `${reason} (${problems.join('; ')})`,
  });

  const listed = (set: UserSet): string => {
    const parts: string[] = [];
    if (set.users.length > 0) parts.push(`users ${set.users.join(', ')}`);
    if (set.usergroups.length > 0) parts.push(`user groups ${set.usergroups.join(', ')}`);
    return parts.length === 0 ? 'nobody is configured' : parts.join('; ');
  };

  const operatorOrApprover = async (user: string): Promise<{ member: boolean; problems: string[] }> => {
    const approver = await member(user, slack.approvers);
    if (approver.member) return approver;
    const operator = await member(user, slack.operators);
    return { member: operator.member, problems: [...approver.problems, ...operator.problems] };
  };

  return {
    async canStart(user) {
      const found = await operatorOrApprover(user);
      if (found.member) return ALLOWED;
      return refuse(
        `<@${user}> may not start runbooks: not an operator or approver in slack.operators or slack.approvers`,
        found.problems,
      );
    },

    async canApprove(user, run) {
      const found = await member(user, slack.approvers);
      if (!found.member) {
        return refuse(
          `<@${user}> may not approve steps of run ${run.id}: not in slack.approvers (${listed(slack.approvers)})`,
          found.problems,
        );
      }
      if (slack.fourEyes && user === run.requester) {
        return refuse(
          `<@${user}> started run ${run.id} and may not approve its steps: slack.fourEyes requires a second approver`,
          [],
        );
      }
      return ALLOWED;
    },

    async canAbort(user, run) {
      const found = await operatorOrApprover(user);
      if (found.member) return ALLOWED;
      return refuse(
        `<@${user}> may not abort or resume run ${run.id}: not an operator or approver in slack.operators or slack.approvers`,
        found.problems,
      );
    },
  };
}
