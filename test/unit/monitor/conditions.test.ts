import { describe, expect, it } from 'vitest';
import {
  evaluate,
  initialTrack,
  referenceHeight,
  type ConditionSettings,
  type EvaluateContext,
  type NodeTrack,
} from '../../../src/monitor/conditions.js';
import type { NodeCondition } from '../../../src/monitor/types.js';

const settings: ConditionSettings = {
  intervalMs: 3_000,
  lagBlocks: 10,
  forMs: 10_000,
  stallMs: 15_000,
  failures: 3,
};

interface Step {
  /** Seconds since the start. */
  readonly t: number;
  readonly height?: number;
  readonly fail?: string;
  readonly cnPeers?: number;
  readonly reference?: number;
}

/** Feeds probes one by one and returns the track after each. */
function feed(steps: readonly Step[], role: EvaluateContext['role'] = 'cn'): NodeTrack[] {
  let track = initialTrack();
  const out: NodeTrack[] = [];
  for (const step of steps) {
    const at = step.t * 1000;
    const obs =
      step.fail !== undefined
        ? ({ at, ok: false, error: step.fail } as const)
        : {
            at,
            ok: true as const,
            height: step.height ?? 0,
            ...(step.cnPeers === undefined ? {} : { cnPeers: step.cnPeers }),
          };
    track = evaluate(track, obs, {
      role,
      settings,
      ...(step.reference === undefined ? {} : { referenceHeight: step.reference }),
    });
    out.push(track);
  }
  return out;
}

/** A probe every 3 s from `from` to `to` seconds inclusive. */
function every3s(from: number, to: number, make: (t: number) => Omit<Step, 't'>): Step[] {
  const steps: Step[] = [];
  for (let t = from; t <= to; t += 3) steps.push({ t, ...make(t) });
  return steps;
}

function conditions(tracks: readonly NodeTrack[]): NodeCondition[] {
  return tracks.map((t) => t.condition);
}

/** The distinct conditions in order, with repeats collapsed: how often a node would have flapped. */
function transitions(tracks: readonly NodeTrack[]): NodeCondition[] {
  const out: NodeCondition[] = [];
  for (const c of conditions(tracks)) if (out[out.length - 1] !== c) out.push(c);
  return out;
}

describe('conditions', () => {
  it('a node is unknown until its first answer and healthy once it answers in step with the reference', () => {
    const tracks = feed([{ t: 0, height: 100, reference: 100 }]);
    expect(initialTrack().condition).toBe('unknown');
    expect(tracks[0]?.condition).toBe('healthy');
    expect(tracks[0]?.lag).toBe(0);
  });

  it('a height that stops moving is stalled once it has not moved for the stall time, and not a probe earlier', () => {
    // One block per second until t=30, then the height stays at 130.
    const tracks = feed(every3s(0, 60, (t) => ({ height: 100 + Math.min(t, 30), reference: 100 + t })));
    const firstStalled = tracks.findIndex((t) => t.condition === 'stalled');
    const at = firstStalled * 3;
    // The last change was seen at t=30 (estimated at 28.5 s): stalled at the first probe ≥ 43.5 s.
    expect(at).toBe(45);
    expect(tracks[firstStalled - 1]?.condition).not.toBe('stalled');
    expect(tracks[firstStalled]?.conditionSince).toBe(28_500);
  });

  it('a stall seen after two probes an odd number of ms apart is dated to a whole millisecond', () => {
    // A late round then one on time: 2.999 s between the probes that saw the last block.
    const tracks = feed([
      { t: 0, height: 100 },
      { t: 3, height: 103 },
      { t: 5.999, height: 106 },
      ...every3s(9, 27, () => ({ height: 106 })),
    ]);
    const stalled = tracks.find((t) => t.condition === 'stalled');
    expect(stalled?.conditionSince).toBe(4_500);
    expect(tracks.every((t) => Number.isInteger(t.heightChangedAt))).toBe(true);
  });

  it('a stalled node clears only after it has kept moving for a while, not on one lucky block', () => {
    const steps: Step[] = [
      ...every3s(0, 30, () => ({ height: 100, reference: 100 })),
      // One block at t=33, then nothing again.
      ...every3s(33, 39, () => ({ height: 101, reference: 110 })),
    ];
    const lucky = feed(steps);
    expect(lucky.map((t) => t.condition).slice(5)).not.toContain('healthy');

    const recovering = feed([
      ...every3s(0, 30, () => ({ height: 100, reference: 100 })),
      ...every3s(33, 60, (t) => ({ height: 100 + (t - 30), reference: 100 + (t - 30) })),
    ]);
    expect(transitions(recovering)).toEqual(['healthy', 'stalled', 'healthy']);
    const clearedAt = recovering.findIndex((t, i) => i > 11 && t.condition === 'healthy') * 3;
    // Moving again from t=33: three probes in a row see a new block (t=33, 36, 39), cleared at t=39.
    expect(clearedAt).toBe(39);
  });

  it('a stalled node that moves a block now and then is not cleared by the few probes that see one', () => {
    // Stalled, then one block every 12 s: every fourth probe sees a new one, never three in a row, and the
    // height is older than stall/2 at times, so it stays stalled rather than clearing and stalling again.
    const tracks = feed([
      ...every3s(0, 30, () => ({ height: 100, reference: 100 })),
      ...every3s(33, 120, (t) => ({
        height: 100 + Math.floor((t - 30) / 12),
        reference: 100 + Math.floor((t - 30) / 12),
      })),
    ]);
    expect(transitions(tracks)).toEqual(['healthy', 'stalled']);
  });

  it('a node more than lagBlocks behind is lagging only after it stayed behind for `for`', () => {
    const tracks = feed(
      every3s(0, 30, (t) => ({ height: 1000 + t, reference: 1000 + t + (t >= 6 ? 15 : 0) })),
    );
    // Behind from t=6; `for` is 10 s: lagging at the probe at t=18, not at t=15.
    expect(tracks[5]?.condition).toBe('healthy');
    expect(tracks[6]?.condition).toBe('lagging');
    expect(tracks[6]?.conditionSince).toBe(6_000);
    expect(tracks[6]?.lag).toBe(15);
  });

  it('a short dip behind the reference is not lagging', () => {
    const tracks = feed(
      every3s(0, 30, (t) => ({ height: 1000 + t, reference: 1000 + t + (t === 9 || t === 12 ? 20 : 0) })),
    );
    expect(transitions(tracks)).toEqual(['healthy']);
  });

  it('a lag hovering around the threshold raises one incident and does not flap', () => {
    // 15 s at 14 blocks behind, 15 s at 8 blocks behind, over and over for four minutes: each phase is
    // longer than `for`, so a plain threshold would raise and clear the alert every 15 s.
    const tracks = feed(
      every3s(0, 240, (t) => {
        const lag = t < 3 ? 0 : Math.floor((t - 3) / 15) % 2 === 0 ? 14 : 8;
        return { height: 1000 + t, reference: 1000 + t + lag };
      }),
    );
    expect(transitions(tracks)).toEqual(['healthy', 'lagging']);
  });

  it('short dips above the threshold that never last `for` raise nothing', () => {
    const pattern = [9, 12, 11, 8, 13, 12, 9, 11];
    const tracks = feed(
      every3s(0, 120, (t) => ({
        height: 1000 + t,
        reference: 1000 + t + (pattern[(t / 3) % pattern.length] ?? 0),
      })),
    );
    expect(transitions(tracks)).toEqual(['healthy']);
  });

  it('lagging clears after three probes in a row at or below half the threshold', () => {
    const tracks = feed(
      every3s(0, 60, (t) => {
        const lag = t < 3 ? 0 : t <= 27 ? 20 : 4;
        return { height: 1000 + t, reference: 1000 + t + lag };
      }),
    );
    expect(transitions(tracks)).toEqual(['healthy', 'lagging', 'healthy']);
    // Lag 4 from t=30: the probes at t=30, 33 and 36 clear it.
    expect(tracks.findIndex((t, i) => i > 10 && t.condition === 'healthy') * 3).toBe(36);
  });

  it('a recovering lag that goes back above half the threshold starts counting again', () => {
    const lagAt = (t: number) => (t < 3 ? 0 : t <= 27 ? 20 : t === 36 ? 7 : 4);
    const tracks = feed(every3s(0, 60, (t) => ({ height: 1000 + t, reference: 1000 + t + lagAt(t) })));
    expect(transitions(tracks)).toEqual(['healthy', 'lagging', 'healthy']);
    // 30, 33 healthy, 36 not (7 > 5), then 39, 42, 45: cleared at t=45.
    expect(tracks.findIndex((t, i) => i > 10 && t.condition === 'healthy') * 3).toBe(45);
  });

  it('a node is down after `failures` consecutive failed probes, dated from the first, and back after two answers', () => {
    const tracks = feed([
      { t: 0, height: 100, reference: 100 },
      { t: 3, fail: 'connect ECONNREFUSED' },
      { t: 6, fail: 'connect ECONNREFUSED' },
      { t: 9, fail: 'timed out' },
      { t: 12, height: 112, reference: 112 },
      { t: 15, height: 115, reference: 115 },
    ]);
    expect(conditions(tracks)).toEqual(['healthy', 'healthy', 'healthy', 'down', 'down', 'healthy']);
    expect(tracks[3]?.conditionSince).toBe(3_000);
    expect(tracks[3]?.lastError).toBe('timed out');
    expect(tracks[5]?.lastError).toBeUndefined();
  });

  it('failures that never reach `failures` in a row do not make a node down', () => {
    const tracks = feed(
      every3s(0, 60, (t) =>
        (t / 3) % 3 === 2 ? { fail: 'timeout' } : { height: 100 + t, reference: 100 + t },
      ),
    );
    expect(conditions(tracks)).not.toContain('down');
  });

  it('a node that never answered is down after `failures` probes', () => {
    const tracks = feed([
      { t: 0, fail: 'x' },
      { t: 3, fail: 'x' },
      { t: 6, fail: 'x' },
    ]);
    expect(conditions(tracks)).toEqual(['unknown', 'unknown', 'down']);
  });

  it('a CN with no CN peers for `for` is isolated; a standby or PN never is', () => {
    const steps = every3s(0, 30, (t) => ({ height: 100 + t, reference: 100 + t, cnPeers: t >= 3 ? 0 : 4 }));
    expect(transitions(feed(steps, 'cn'))).toEqual(['healthy', 'isolated']);
    expect(transitions(feed(steps, 'standby'))).toEqual(['healthy']);
    expect(transitions(feed(steps, 'pn'))).toEqual(['healthy']);
  });

  it('a standby that falls behind is standby-lagging, not lagging', () => {
    const tracks = feed(
      every3s(0, 30, (t) => ({ height: 100 + t, reference: 150 + t })),
      'standby',
    );
    expect(transitions(tracks)).toEqual(['healthy', 'standby-lagging']);
  });

  it('down outranks stalled, and the stall is remembered while probes fail', () => {
    const tracks = feed([
      ...every3s(0, 30, () => ({ height: 100, reference: 100 })),
      { t: 33, fail: 'x' },
      { t: 36, fail: 'x' },
      { t: 39, fail: 'x' },
    ]);
    expect(transitions(tracks)).toEqual(['healthy', 'stalled', 'down']);
  });

  it('without a reference the lag is unknown and a lagging node stays lagging', () => {
    const tracks = feed([
      ...every3s(0, 21, (t) => ({ height: 100 + t, reference: 150 + t })),
      { t: 24, height: 124 },
    ]);
    expect(tracks[tracks.length - 2]?.condition).toBe('lagging');
    expect(tracks[tracks.length - 1]?.condition).toBe('lagging');
  });

  it('the reference is the highest healthy candidate', () => {
    expect(
      referenceHeight([
        { height: 100, healthy: true },
        { height: 140, healthy: false },
        { height: 120, healthy: true },
        { healthy: true },
      ]),
    ).toBe(120);
    expect(referenceHeight([{ height: 1, healthy: false }])).toBeUndefined();
  });
});
