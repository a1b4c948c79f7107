import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../../src/config/duration.js';

describe('durations', () => {
  it('parses the units operators write', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('3s')).toBe(3_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('0s')).toBe(0);
  });

  it('rejects what is not a duration', () => {
    for (const bad of ['', '15', 'm', '10 minutes', '-3s', '3x', '1h 30m'])
      expect(parseDuration(bad)).toBeUndefined();
  });

  it('formats for people', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(252_000)).toBe('4m12s');
    expect(formatDuration(3_720_000)).toBe('1h2m');
    expect(formatDuration(9_000)).toBe('9s');
  });
});
