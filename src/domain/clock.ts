// One clock, injected everywhere, so tests can move time.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock tests can set and advance. */
export function manualClock(start = new Date("2026-01-01T00:00:00Z")) {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    set: (d: Date) => void (current = d.getTime()),
    advance: (ms: number) => void (current += ms),
  } satisfies Clock & Record<string, unknown>;
}
