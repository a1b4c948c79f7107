import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../../src/views/cell.js';
import type { CellView } from '../../../src/monitor/types.js';

const AT = Date.UTC(2026, 10, 26, 3, 0, 0);

describe('/cell status protection', () => {
  it('shows for each CN the machine serving it and its protection, and where the roles came from', () => {
    const view: CellView = {
      at: AT,
      referenceHeight: 1200,
      nodes: [
        { node: 'cn1', role: 'cn', servedBy: 'cn1s', height: 1200, lag: 0, condition: 'healthy' },
        {
          node: 'standby:cn1',
          role: 'standby',
          standbyOf: 'cn1',
          height: 1100,
          lag: 100,
          condition: 'standby-lagging',
        },
        { node: 'cn2', role: 'cn', height: 1200, lag: 0, condition: 'healthy' },
      ],
      protection: [
        {
          cn: 'cn1',
          mode: 'standby',
          servedBy: 'cn1s',
          standby: 'cn1',
          standbyState: 'lagging',
          backup: 'recorded',
          rolesRunId: 'r-rb1',
          rolesSince: AT,
        },
        {
          cn: 'cn2',
          mode: 'snapshot',
          servedBy: 'cn2',
          backup: 'missing',
          image: 'stale',
          rolesRunId: 'config',
          rolesSince: 0,
          checkFailures: ['The machine image is newer than the last configuration change: kcnd.conf changed'],
        },
      ],
    };
    const text = JSON.stringify(
      renderStatus({ cell: 'c', view, inventory: [], activeRuns: [], now: AT }).blocks,
    );
    expect(text).toContain('standby of cn1');
    expect(text).toContain('*Protection*');
    expect(text).toContain(
      ':large_yellow_circle: *cn1* served by cn1s — standby cn1 lagging · backup recorded (roles from run `r-rb1`)',
    );
    expect(text).toContain(
      ':large_yellow_circle: *cn2* served by cn2 — backup missing · image stale · last check: The machine image',
    );
  });

  it('a protected CN is green, and a view without protection shows no section', () => {
    const view: CellView = {
      at: AT,
      nodes: [{ node: 'cn1', role: 'cn', condition: 'healthy' }],
      protection: [
        {
          cn: 'cn1',
          mode: 'standby',
          servedBy: 'cn1',
          standby: 'cn1s',
          standbyState: 'ready',
          backup: 'recorded',
          rolesRunId: 'config',
          rolesSince: 0,
        },
      ],
    };
    const text = JSON.stringify(
      renderStatus({ cell: 'c', view, inventory: [], activeRuns: [], now: AT }).blocks,
    );
    expect(text).toContain(':large_green_circle: *cn1* served by cn1 — standby cn1s ready · backup recorded');
    const { protection: _p, ...bare } = view;
    expect(
      JSON.stringify(renderStatus({ cell: 'c', view: bare, inventory: [], activeRuns: [], now: AT }).blocks),
    ).not.toContain('Protection');
  });
});
