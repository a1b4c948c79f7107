/**
 * One JSON-RPC call on a fresh connection, for the lab's node stand-ins: a kept-alive connection would
 * outlive a VIP move and reach the old holder. Rejects with the node's error message.
 */
import { request } from 'node:http';

export function jsonRpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
    const req = request(
      url,
      { method: 'POST', agent: false, timeout: 5_000, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              result?: unknown;
              error?: { message: string };
            };
            if (parsed.error) reject(new Error(parsed.error.message));
            else resolve(parsed.result);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}
