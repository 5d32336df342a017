import { monitorEventLoopDelay } from "node:perf_hooks";

// The platform runs in this process (test/support/platform.ts), so a request
// that blocks its event loop shows as a delay of this loop's sampling timer.

/** Sampling interval: each recorded delay includes it, so the figures err on the high side by up to this. */
const RESOLUTION_MS = 10;

export interface EventLoopWatch {
  /** Forgets what was recorded so far: the next reading covers only what happens after. */
  reset(): void;
  /** The longest delay recorded since the last reset, in ms. */
  longestSinceReset(): number;
  /** The longest delay of any reading taken, in ms. */
  readonly longestOverall: number;
  stop(): void;
}

export function watchEventLoop(): EventLoopWatch {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  let longestOverall = 0;
  return {
    reset: () => histogram.reset(),
    longestSinceReset() {
      const ms = histogram.max / 1e6;
      longestOverall = Math.max(longestOverall, ms);
      return ms;
    },
    get longestOverall() {
      return longestOverall;
    },
    stop: () => histogram.disable(),
  };
}
