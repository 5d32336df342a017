import type { Clock } from "../../src/domain/clock.js";

/**
 * Real time plus an offset the test moves forward (or puts anywhere): the
 * server can be sent 58 s ahead at once, or to a week's end, while real waits
 * (an SDK's retry backoff) still pass.
 */
export function offsetClock() {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance: (ms: number) => void (offsetMs += ms),
    set: (at: Date) => void (offsetMs = at.getTime() - Date.now()),
  } satisfies Clock & Record<string, unknown>;
}
