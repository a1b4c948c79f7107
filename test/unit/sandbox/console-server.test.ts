/**
 * The sandbox console's HTTP side: JSON POSTs from its own origin and loopback name only, and the probes.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../src/sandbox/start-sandbox.js';
import { ALICE, startFastSandbox } from '../../support/sandbox-harness.js';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await startFastSandbox();
});

afterAll(async () => {
  await sandbox.stop();
});

/** A raw request, so the Host header can be anything (fetch does not let a caller set it). */
function post(
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: sandbox.port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const command = JSON.stringify({ text: '/cell help', user: ALICE });
const own = () => ({ host: `127.0.0.1:${sandbox.port}`, 'content-type': 'application/json' });

describe('sandbox console server', () => {
  it('takes a JSON POST from its own page (Origin its own), or from a tool that sends no Origin', async () => {
    expect((await post('/api/command', command, { ...own(), origin: sandbox.url })).status).toBe(200);
    expect((await post('/api/command', command, own())).status).toBe(200);
    expect(
      (await post('/api/command', command, { ...own(), 'content-type': 'application/json; charset=utf-8' }))
        .status,
    ).toBe(200);
  });

  it('refuses other origins and other Host names with 403, and anything but JSON with 415, doing nothing', async () => {
    const before = sandbox.chat.messages().length;
    const evil = await post('/api/command', command, { ...own(), origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body)).toMatchObject({ ok: false, error: expect.stringMatching(/other origins/) });
    const rebound = await post('/api/command', command, { ...own(), host: `evil.example:${sandbox.port}` });
    expect(rebound.status).toBe(403);
    const form = await post('/api/command', `text=${encodeURIComponent('/cell help')}&user=${ALICE}`, {
      ...own(),
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    expect((await post('/api/command', command, { ...own(), 'content-type': 'text/plain' })).status).toBe(
      415,
    );
    expect(sandbox.chat.messages()).toHaveLength(before);
  });

  it('serves /livez, /readyz and /healthz', async () => {
    expect(await (await fetch(`${sandbox.url}/livez`)).json()).toEqual({ ok: true });
    expect((await fetch(`${sandbox.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${sandbox.url}/healthz`)).status).toBe(200);
  });
});
