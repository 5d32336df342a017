import type { Billing, Checkpoint } from "../billing.js";
import type { Logger } from "../logger.js";

// SPEC 5: while a request runs, what it has delivered is written onto its hold
// at least every interval, so a crash loses at most one interval of billing.
// One statement writes every running request of this process: the cost is one
// round trip per interval, whatever the number of streams.

export interface Checkpoints {
  /** Checkpoints `read()` at every flush until the returned function is called. */
  track(read: () => Checkpoint): () => void;
  /** Writes every tracked request's checkpoint now. */
  flush(): Promise<void>;
  stop(): void;
}

export function createCheckpoints({
  billing,
  everyMs,
  logger,
}: {
  billing: Pick<Billing, "checkpoint">;
  everyMs: number;
  logger: Logger;
}): Checkpoints {
  const tracked = new Set<() => Checkpoint>();
  let flushing: Promise<void> | null = null;

  async function write(): Promise<void> {
    const batch = [...tracked].map((read) => read());
    try {
      await billing.checkpoint(batch);
    } catch (error) {
      // The previous checkpoint stands; the next interval tries again.
      logger.warn({ err: error, requests: batch.length }, "could not checkpoint running requests");
    }
  }

  /** One flush at a time: a slow database delays the next instead of stacking them up. */
  const flush = (): Promise<void> => (flushing ??= write().finally(() => (flushing = null)));

  const timer = setInterval(() => {
    if (tracked.size > 0) void flush();
  }, everyMs);
  timer.unref();

  return {
    track(read) {
      tracked.add(read);
      return () => void tracked.delete(read);
    },
    flush,
    stop: () => clearInterval(timer),
  };
}
