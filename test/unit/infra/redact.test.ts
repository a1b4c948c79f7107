import { afterEach, describe, expect, it } from 'vitest';
import {
  redactSecrets,
  redactThenTruncate,
  scrubDeep,
  secretsFromEnv,
  setKnownSecrets,
} from '../../../src/infra/redact.js';

const KEY = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

describe('redactSecrets', () => {
  it('removes nodekeys with or without 0x, and tokens', () => {
    expect(redactSecrets(`key=${KEY} done`)).toBe('key=[redacted] done');
    expect(redactSecrets(`0x${KEY}`)).toBe('[redacted]');
    expect(redactSecrets('token xoxb-123-456-abc and xapp-1-A0-99')).toBe('token [redacted] and [redacted]');
    expect(redactSecrets('-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----')).toBe(
      '[redacted]',
    );
  });

  it('keeps addresses and 128-hex node ids', () => {
    const address = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
    const nodeId = 'ab'.repeat(64);
    expect(redactSecrets(`${address} ${nodeId}`)).toBe(`${address} ${nodeId}`);
  });
});

describe('redactSecrets knows more than nodekeys', () => {
  afterEach(() => setKnownSecrets([]));

  it('removes every Slack token kind, refresh tokens (xoxe-) included', () => {
    for (const token of [
      'xoxb-1-2-abc',
      'xoxp-1-2-abc',
      'xoxa-2-abc',
      'xoxr-abc',
      'xoxe-1-abcDEF',
      'xoxe.xoxp-1-abc',
      'xapp-1-A0-99',
    ])
      expect(redactSecrets(`t=${token} end`), token).toBe('t=[redacted] end');
  });

  it('removes AWS key ids, secret keys and session tokens, in ini form and in JSON', () => {
    expect(redactSecrets('id AKIAIOSFODNN7EXAMPLE and ASIAY34FZKBOKMUTVV7A')).toBe(
      'id [redacted] and [redacted]',
    );
    expect(redactSecrets('aws_session_token = IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ')).toBe(
      'aws_session_token = [redacted]',
    );
    const sts = JSON.stringify({
      Credentials: {
        AccessKeyId: 'ASIAY34FZKBOKMUTVV7A',
        SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG',
        SessionToken: 'FwoGZX+/=',
      },
    });
    const out = redactSecrets(sts);
    expect(out).not.toMatch(/ASIAY34|wJalr|FwoGZX/);
    expect(out).toContain('"SecretAccessKey":"[redacted]"');
    expect(out).toContain('"SessionToken":"[redacted]"');
  });

  it('removes passwords from Redis URLs, keeping user and host', () => {
    expect(redactSecrets('redis://cellops:hunter22@redis.internal:6379/0 failed')).toBe(
      'redis://cellops:[redacted]@redis.internal:6379/0 failed',
    );
    expect(redactSecrets('rediss://:p4ss@r:6380')).toBe('rediss://:[redacted]@r:6380');
    expect(redactSecrets('redis+sentinel://:s3nt@a:26379,b:26379/mymaster')).toBe(
      'redis+sentinel://:[redacted]@a:26379,b:26379/mymaster',
    );
    expect(redactSecrets('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });

  it('removes the exact values of the secrets it was started with, such as the signing secret', () => {
    const env = {
      SLACK_SIGNING_SECRET: '8f742231b10e8888abcd99yyyzzz85a5',
      REDIS_URL: 'redis://u:pa%24%24word1@r:6379',
      SSH_KEY_PASSPHRASE: 'correct horse battery',
      SLACK_BOT_TOKEN: '',
    };
    setKnownSecrets(secretsFromEnv(env));
    expect(redactSecrets(`sig ${env.SLACK_SIGNING_SECRET}; pw pa$$word1; pp correct horse battery`)).toBe(
      'sig [redacted]; pw [redacted]; pp [redacted]',
    );
    setKnownSecrets(['short']);
    expect(redactSecrets('short words stay')).toBe('short words stay');
  });
});

describe('cut text', () => {
  it('redacts before cutting, so no prefix of a key survives the cut', () => {
    for (let cut = 1; cut <= 70; cut++) {
      const text = `key ${KEY} tail`;
      const out = redactThenTruncate(text, cut + 4);
      expect(out, `cut at ${cut}`).not.toMatch(/[0-9a-f]{8}/);
    }
    expect(redactThenTruncate(`${'x'.repeat(100)} ${KEY}`, 40, { keep: 'end' })).toBe(
      `…${'x'.repeat(28)} [redacted]`,
    );
  });

  it('treats 32 to 63 hex characters at a cut edge as part of a key', () => {
    // What cutting first (the old order) leaves of a key: no longer 64 characters, still secret.
    for (const n of [32, 40, 50, 63]) {
      const head = KEY.slice(0, n);
      const tail = KEY.slice(64 - n);
      expect(redactSecrets(`failed: ${head}`), `head ${n}`).toBe('failed: [redacted]');
      // 0x + 40 is an address and kept (see below); a key cut there still hides 96 bits.
      if (n !== 40) expect(redactSecrets(`failed: 0x${head}…`), `0x head ${n}`).toBe('failed: [redacted]…');
      expect(redactSecrets(`${tail} was read`), `tail ${n}`).toBe('[redacted] was read');
      expect(redactSecrets(`…${tail} was read`), `… tail ${n}`).toBe('…[redacted] was read');
    }
    // An address at the end of a message is an address; 31 hex characters are not a key's worth.
    expect(redactSecrets('node address 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266')).toBe(
      'node address 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
    );
    expect(redactSecrets(`sha256 ${KEY.slice(0, 12)}… ok ${KEY.slice(0, 31)}`)).toBe(
      `sha256 ${KEY.slice(0, 12)}… ok ${KEY.slice(0, 31)}`,
    );
  });
});

describe('scrubDeep', () => {
  it('redacts nested strings, secret-named fields and error causes, within a depth', () => {
    const root = new Error(`connect failed for redis://u:pw123456@r:6379`);
    const error = new Error('step failed', { cause: new Error(`read ${KEY}`, { cause: root }) });
    const input: Record<string, unknown> = {
      run: { steps: [{ output: [`got ${KEY}`], token: 'plain-looking' }] },
      error,
      passphrase: 'hunter2hunter2',
      buffer: Buffer.from(KEY),
      deep: { a: { b: { c: { d: { e: { f: KEY } } } } } },
    };
    input.self = input;
    const out = JSON.stringify(scrubDeep(input, 6));
    expect(out).not.toContain(KEY);
    expect(out).not.toContain('pw123456');
    expect(out).not.toContain('plain-looking');
    expect(out).not.toContain('hunter2');
    expect(out).toContain('"type":"Error"');
    expect(out).toContain('redis://u:[redacted]@r:6379');
    expect(out).toContain('[circular]');
    expect(out).toContain(`[${KEY.length} bytes]`);
    expect(out).toContain('[nested too deep]');
  });
});
