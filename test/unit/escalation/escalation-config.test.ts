import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfigText } from '../../../src/config/load.js';
import { describePagers, readPagerSecrets } from '../../../src/escalation/pager-env.js';
import { ConfigError } from '../../../src/errors.js';
import { EXAMPLE, problemsOf, withChange } from '../../support/config-text.js';

// The escalation section exactly as the design document shows it.
const CONTRACT_SECTION = `
escalation:                      # optional; secrets only from the environment
  pagerduty: { routingKeyEnv: PAGERDUTY_ROUTING_KEY, url: https://events.pagerduty.com }   # POST {url}/v2/enqueue
  opsgenie: { apiKeyEnv: OPSGENIE_API_KEY, url: https://api.opsgenie.com }                 # /v2/alerts
  webhook: { url: https://hooks.example.com/cellops, secretEnv: CELLOPS_WEBHOOK_SECRET }  # HMAC-SHA256 header
  pageAfter: 5m                  # an alert not acknowledged in Slack by then is paged
  approvalReminder: 5m           # an approval waiting this long is reminded in its thread…
  approvalPage: 10m              # …and paged after this long
`;

function withEscalation(section: unknown): string {
  return withChange((doc) => {
    doc.escalation = section;
  });
}

describe('escalation configuration', () => {
  it('accepts the section as the design shows it and resolves it in milliseconds', () => {
    const doc = parse(EXAMPLE) as Record<string, unknown>;
    delete doc.escalation;
    const config = parseConfigText(`${stringify(doc)}${CONTRACT_SECTION}`, 'cellops.yaml');
    expect(config.escalation).toEqual({
      pagerduty: { routingKeyEnv: 'PAGERDUTY_ROUTING_KEY', url: 'https://events.pagerduty.com' },
      opsgenie: { apiKeyEnv: 'OPSGENIE_API_KEY', url: 'https://api.opsgenie.com' },
      webhook: { url: 'https://hooks.example.com/cellops', secretEnv: 'CELLOPS_WEBHOOK_SECRET' },
      pageAfterMs: 300_000,
      approvalReminderMs: 300_000,
      approvalPageMs: 600_000,
    });
  });

  it('is optional, and fills the documented defaults', () => {
    const doc = parse(EXAMPLE) as Record<string, unknown>;
    delete doc.escalation;
    expect(parseConfigText(stringify(doc), 'x').escalation).toBeUndefined();
    const config = parseConfigText(withEscalation({ pagerduty: { routingKeyEnv: 'PD_KEY' } }), 'x');
    expect(config.escalation).toEqual({
      pagerduty: { routingKeyEnv: 'PD_KEY', url: 'https://events.pagerduty.com' },
      pageAfterMs: 300_000,
      approvalReminderMs: 300_000,
      approvalPageMs: 600_000,
    });
  });

  it('names each bad key: unknown keys, URLs, durations, variable names, order of delays', () => {
    const problems = problemsOf(
      withEscalation({
        pagerduty: { routingKeyEnv: 'PD_KEY', url: 'ftp://events.pagerduty.com' },
        opsgenie: { apiKeyEnv: 'OG_KEY', url: 'https://user:pw@api.opsgenie.com' },
        webhook: { url: 'not a url', secretEnv: 'SECRET', sign: true },
        pageAfter: 'soon',
        approvalReminder: '10m',
        approvalPage: '5m',
        pagrAfter: '1m',
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^cellops\.yaml: escalation: unknown key "pagrAfter"/),
        expect.stringMatching(/escalation\.webhook: unknown key "sign"/),
        expect.stringMatching(/escalation\.pagerduty\.url: .*http\(s\) URL/),
        expect.stringMatching(/escalation\.opsgenie\.url: .*must not carry credentials/),
        expect.stringMatching(/escalation\.webhook\.url: .*http\(s\) URL/),
        expect.stringMatching(/escalation\.pageAfter: .*not a duration/),
      ]),
    );
  });

  it('refuses an approval page that does not come after the reminder', () => {
    expect(problemsOf(withEscalation({ approvalReminder: '10m', approvalPage: '5m' }))).toEqual([
      expect.stringMatching(/escalation\.approvalPage: .*longer than approvalReminder/),
    ]);
  });

  it('never echoes what was put where a variable name belongs: it may be the key itself', () => {
    const key = 'e93facc04764012d7bfb002500d5d1a6';
    const problems = problemsOf(withEscalation({ pagerduty: { routingKeyEnv: key } }));
    expect(problems).toEqual([
      expect.stringMatching(/escalation\.pagerduty\.routingKeyEnv: must be the NAME/),
    ]);
    expect(problems.join('\n')).not.toContain(key);
  });
});

describe('pager secrets from the environment', () => {
  const escalation = {
    pagerduty: { routingKeyEnv: 'PD_KEY', url: 'https://events.pagerduty.com' },
    webhook: { url: 'https://hooks.example.com/c?token=t0k', secretEnv: 'HOOK_SECRET' },
    pageAfterMs: 1,
    approvalReminderMs: 1,
    approvalPageMs: 2,
  };

  it('reads each named variable', () => {
    expect(readPagerSecrets(escalation, { PD_KEY: 'k1', HOOK_SECRET: ' s2 ' })).toEqual({
      pagerduty: 'k1',
      webhook: 's2',
    });
  });

  it('names every missing or empty variable and the key that names it', () => {
    let error: unknown;
    try {
      readPagerSecrets(escalation, { HOOK_SECRET: '' });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(
        /^environment: PD_KEY: is not set, and escalation\.pagerduty\.routingKeyEnv names it/,
      ),
      expect.stringMatching(
        /^environment: HOOK_SECRET: is not set, and escalation\.webhook\.secretEnv names it/,
      ),
    ]);
  });

  it('describes the pagers for check-config without secrets or URL query strings', () => {
    const lines = describePagers(escalation, { PD_KEY: 'k1-secret' }).join('\n');
    expect(lines).toContain('PD_KEY set');
    expect(lines).toContain('HOOK_SECRET NOT SET');
    expect(lines).not.toContain('k1-secret');
    expect(lines).not.toContain('t0k');
  });
});
