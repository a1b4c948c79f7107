import { describe, expect, it, vi } from 'vitest';
import { createCommandHandlers, type CommandDeps } from '../../../src/commands/handlers.js';
import { createApprovalPolicy } from '../../../src/runbooks/approval-policy.js';
import { createMemoryRunStore } from '../../../src/runbooks/engine/memory-run-store.js';
import { createMemoryIncidentStore } from '../../../src/monitor/incidents.js';
import { createReportSource } from '../../../src/report/gather-report.js';
import type { Engine, RunRecord } from '../../../src/runbooks/types.js';
import { ManualClock } from '../../fakes/manual-clock.js';
import { RecordingLogger } from '../../fakes/recording-logger.js';
import { FakeChat } from '../../fakes/fake-chat.js';
import { APPROVER_A, CHANNEL, OPERATOR, runRecord, testConfig } from '../../support/bot-fixtures.js';

const THREAD = { channel: CHANNEL, ts: '1700000000.000042' };

async function setup(run: RunRecord) {
  const clock = new ManualClock();
  const config = testConfig();
  const chat = new FakeChat();
  const store = createMemoryRunStore({ clock });
  await store.saveRun(run);
  await store.appendAudit(run.id, {
    at: run.createdAt,
    who: OPERATOR,
    what: 'run-started',
    detail: run.summary,
  });
  await store.appendAudit(run.id, {
    at: run.createdAt + 5_000,
    who: APPROVER_A,
    what: 'decision',
    stepId: 'fence',
    detail: 'approve (round 1, settles it)',
  });
  const incidents = createMemoryIncidentStore({ clock });
  const start = vi.fn<Engine['start']>(async () => run);
  const deps: CommandDeps = {
    config,
    engine: { start, get: async () => run, list: async () => [run] } as unknown as Engine,
    policy: createApprovalPolicy({ slack: config.slack, directory: chat }),
    chat,
    clock,
    logger: new RecordingLogger(),
    reports: createReportSource({ store, clock }),
    incidents,
  };
  return { handlers: createCommandHandlers(deps), chat, start, incidents, clock };
}

const req = (text: string, user = OPERATOR) => ({ user, channel: CHANNEL, text });

describe('/cell report', () => {
  it("posts the report in the run's thread and tells the asker where", async () => {
    const { handlers, chat } = await setup(runRecord({ status: 'succeeded', thread: THREAD }));
    const reply = await handlers.cell(req('report r-abc123'));
    expect(reply.ephemeral).toBe(true);
    expect(reply.text).toContain('posted the report of run `r-abc123`');
    const posts = chat.calls.filter((c) => c.kind === 'post');
    expect(posts).toHaveLength(1);
    const post = posts[0];
    expect(post?.kind === 'post' && post.message.threadTs).toBe(THREAD.ts);
    const body = JSON.stringify(post?.kind === 'post' ? post.message.blocks : []);
    expect(body).toContain('Report of run r-abc123');
    expect(body).toContain(`<@${APPROVER_A}> approved`);
  });

  it('answers with the report itself when the run has no thread', async () => {
    const { handlers, chat } = await setup(runRecord({ status: 'failed' }));
    const reply = await handlers.cell(req('report r-abc123'));
    expect(reply.ephemeral).toBe(false);
    expect(reply.text).toContain('Report of run r-abc123');
    expect(chat.calls).toEqual([]);
  });

  it('refuses an unknown run and a malformed id, posting nothing', async () => {
    const { handlers, chat } = await setup(runRecord({ thread: THREAD }));
    expect((await handlers.cell(req('report r-nope'))).text).toContain('There is no run r-nope');
    expect((await handlers.cell(req('report a/b'))).text).toMatch(/not a valid argument|contains/);
    expect((await handlers.cell(req('report'))).text).toContain('needs a run id');
    expect(chat.calls).toEqual([]);
  });
});

describe('a failover started while its CN has an open alert', () => {
  it('keeps the alert with the run, for its report', async () => {
    const { handlers, start, incidents, clock } = await setup(runRecord());
    const openedAt = clock.now() - 90_000;
    await incidents.create({
      id: 'cn1-x1',
      subject: 'cn1',
      node: 'cn1',
      kind: 'down',
      openedAt,
      createdAt: openedAt + 10_000,
      message: { channel: CHANNEL, ts: '1700000000.000001' },
      pending: {},
      version: 1,
    });
    await handlers.failover(req('cn1'));
    expect(start).toHaveBeenCalledWith(
      expect.objectContaining({
        incident: {
          id: 'cn1-x1',
          kind: 'down',
          openedAt,
          postedAt: openedAt + 10_000,
          message: { channel: CHANNEL, ts: '1700000000.000001' },
        },
      }),
    );
  });

  it('starts without one when there is no alert', async () => {
    const { handlers, start } = await setup(runRecord());
    await handlers.failover(req('cn1'));
    expect(start.mock.calls[0]?.[0]).not.toHaveProperty('incident');
  });
});
