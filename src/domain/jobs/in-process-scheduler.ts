import type { JobScheduler, RecurringJob } from "./recurring-job.js";

/**
 * Runs recurring jobs on timers in this process (the embedded mode of SPEC 13).
 *
 * - A job never overlaps itself: the next run is timed from the end of the
 *   previous one, so a slow run delays the next instead of stacking up.
 * - A failing run is reported to `onError` and the job keeps its schedule; a
 *   job error must never take the server down.
 * - Timers are unref'd, so pending jobs alone do not keep the process alive.
 */
export function createInProcessScheduler({
  onError,
}: {
  onError: (error: unknown, jobName: string) => void;
}): JobScheduler {
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let stopped = false;

  async function runOnce(job: RecurringJob): Promise<void> {
    try {
      await job.run();
    } catch (error) {
      try {
        onError(error, job.name);
      } catch {
        // The error reporter itself failed; nothing else can be done here.
      }
    }
  }

  function scheduleNext(job: RecurringJob): void {
    const timer = setTimeout(() => {
      const run = runOnce(job);
      running.add(run);
      void run.then(() => {
        running.delete(run);
        if (!stopped) scheduleNext(job);
      });
    }, job.everyMs);
    timer.unref();
    timers.set(job.name, timer);
  }

  return {
    schedule(job) {
      if (stopped) throw new Error(`Cannot schedule ${job.name}: the scheduler is stopped.`);
      if (timers.has(job.name)) throw new Error(`A job named ${job.name} is already scheduled.`);
      scheduleNext(job);
    },

    async stop() {
      stopped = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      await Promise.all(running);
    },
  };
}
