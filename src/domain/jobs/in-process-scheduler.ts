import { DomainError } from "../errors.js";
import type { FailedJobRun, JobMonitor } from "./job-monitor.js";
import type { JobScheduler, RecurringJob } from "./recurring-job.js";

// As many failed runs as the queue keeps (queue-scheduler.ts): enough to look into a recent failure.
const KEEP_FAILED = 50;

/**
 * Runs recurring jobs on timers in this process (the embedded mode of SPEC 13).
 *
 * - A job never overlaps itself: the next run is timed from the end of the
 *   previous one, so a slow run delays the next instead of stacking up.
 * - A failing run is reported to `onError` and the job keeps its schedule; a
 *   job error must never take the server down.
 * - Timers are unref'd, so pending jobs alone do not keep the process alive.
 *
 * What it can tell ops is this process's own: runs since it started, and its
 * last failed runs. Retrying a failed run runs its job now instead of at the
 * end of its interval (a job already running is left to its next turn).
 */
export function createInProcessScheduler({
  onError,
  queue = "in-process",
}: {
  onError: (error: unknown, jobName: string) => void;
  /** The name ops know it by. */
  queue?: string;
}): JobScheduler & JobMonitor {
  const jobs = new Map<string, RecurringJob>();
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let failures: FailedJobRun[] = [];
  let runs = 0;
  let completed = 0;
  let stopped = false;

  async function runOnce(job: RecurringJob): Promise<void> {
    const id = `${job.name}:${++runs}`;
    try {
      await job.run();
      completed++;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      failures = [{ queue, id, job: job.name, reason, failedAt: new Date(), attemptsMade: 1 }, ...failures].slice(0, KEEP_FAILED);
      try {
        onError(error, job.name);
      } catch {
        // The error reporter itself failed; nothing else can be done here.
      }
    }
  }

  function scheduleNext(job: RecurringJob, delayMs = job.everyMs): void {
    const timer = setTimeout(() => {
      timers.delete(job.name);
      const run = runOnce(job);
      running.add(run);
      void run.then(() => {
        running.delete(run);
        if (!stopped) scheduleNext(job);
      });
    }, delayMs);
    timer.unref();
    timers.set(job.name, timer);
  }

  /** Brings a waiting job's next run forward to now; a running job has no timer, and keeps its turn. */
  function runSoon(job: RecurringJob): void {
    const timer = timers.get(job.name);
    if (!timer || stopped) return;
    clearTimeout(timer);
    scheduleNext(job, 0);
  }

  return {
    queue,

    schedule(job) {
      if (stopped) throw new Error(`Cannot schedule ${job.name}: the scheduler is stopped.`);
      if (jobs.has(job.name)) throw new Error(`A job named ${job.name} is already scheduled.`);
      jobs.set(job.name, job);
      scheduleNext(job);
    },

    async health() {
      return {
        queue,
        runner: "in-process",
        counts: { scheduled: jobs.size, active: running.size, completed, failed: failures.length },
      };
    },

    async failed(limit) {
      return failures.slice(0, limit);
    },

    async retry(runId) {
      const chosen = runId === undefined ? failures : failures.filter((run) => run.id === runId);
      if (runId !== undefined && chosen.length === 0) throw new DomainError("not_found", `No failed run ${runId} in ${queue}.`, "id");
      failures = failures.filter((run) => !chosen.includes(run));
      for (const name of new Set(chosen.map((run) => run.job))) runSoon(jobs.get(name)!);
      return chosen.map((run) => run.id);
    },

    async stop() {
      stopped = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      await Promise.all(running);
    },
  };
}
