/**
 * Pager secrets come from the environment only. Loading the configuration never reads them (so
 * `check-config` runs anywhere and a config file can be validated in CI); the bot reads them when it
 * starts, through `readPagerSecrets`, and refuses to start when a named variable is empty or missing.
 */
import type { EscalationConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';

export interface PagerSecrets {
  readonly pagerduty?: string;
  readonly opsgenie?: string;
  readonly webhook?: string;
}

interface SecretRef {
  readonly target: keyof PagerSecrets;
  /** Key path in cellops.yaml, for messages. */
  readonly key: string;
  readonly variable: string;
}

function secretRefs(escalation: EscalationConfig): SecretRef[] {
  const refs: SecretRef[] = [];
  if (escalation.pagerduty)
    refs.push({
      target: 'pagerduty',
      key: 'escalation.pagerduty.routingKeyEnv',
      variable: escalation.pagerduty.routingKeyEnv,
    });
  if (escalation.opsgenie)
    refs.push({
      target: 'opsgenie',
      key: 'escalation.opsgenie.apiKeyEnv',
      variable: escalation.opsgenie.apiKeyEnv,
    });
  if (escalation.webhook)
    refs.push({
      target: 'webhook',
      key: 'escalation.webhook.secretEnv',
      variable: escalation.webhook.secretEnv,
    });
  return refs;
}

function valueOf(env: NodeJS.ProcessEnv, variable: string): string | undefined {
  const value = env[variable]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** The secrets of every configured pager; a ConfigError naming each variable that is not set. */
export function readPagerSecrets(escalation: EscalationConfig, env: NodeJS.ProcessEnv): PagerSecrets {
  const secrets: Record<string, string> = {};
  const problems: string[] = [];
  for (const ref of secretRefs(escalation)) {
    const value = valueOf(env, ref.variable);
    if (value === undefined) {
      problems.push(
        `environment: ${ref.variable}: is not set, and ${ref.key} names it (set it to the ${ref.target} secret, or remove escalation.${ref.target})`,
      );
    } else {
      secrets[ref.target] = value;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return secrets;
}

/** One line per pager for `check-config` and the start-up log: where it goes and whether its secret is set. */
export function describePagers(escalation: EscalationConfig, env: NodeJS.ProcessEnv): string[] {
  const urls: Record<keyof PagerSecrets, string | undefined> = {
    pagerduty: escalation.pagerduty?.url,
    opsgenie: escalation.opsgenie?.url,
    webhook: escalation.webhook === undefined ? undefined : new URL(escalation.webhook.url).origin,
  };
  return secretRefs(escalation).map(
    (ref) =>
      `  ${ref.target.padEnd(9)} ${urls[ref.target] ?? ''}  ${ref.variable} ${valueOf(env, ref.variable) === undefined ? 'NOT SET (the bot will not start)' : 'set'}`,
  );
}
