import { LRUCache } from "lru-cache";
import { DomainError } from "../domain/errors.js";
import type { FailedJobRun } from "../domain/jobs/job-monitor.js";
import { JOB_RETRIES, type JobHandler, type JobQueue, type OneOffJob, PermanentJobError, retryDelayMs } from "../domain/jobs/job-queue.js";

// As many finished jobs as the BullMQ queue keeps (bullmq-job-queue.ts): a duplicate of one of them is not run again.
const KEEP_FINISHED = 1_000;

interface QueuedJob {
  job: OneOffJob;
  attemptsMade: number;
  timer: NodeJS.Timeout | null;
}

const keyOf = (job: OneOffJob) => `${job.name}/${job.id}`;

/**
 * One-off jobs run in this process (the embedded default, no Redis), with
 * the same retries as the BullMQ queue. Jobs live in memory only: a job
 * queued when the process dies is lost, so what enqueues them must be able to
 * have them sent again (Stripe resends an event from its dashboard).
 */
export function createInProcessJobQueue({
  onError,
  queue = "one-off",
  firstRetryDelayMs = JOB_RETRIES.firstDelayMs,
}: {
  onError: (error: unknown, job: OneOffJob) => void;
  queue?: string;
  firstRetryDelayMs?: number;
}): JobQueue {
  const handlers = new Map<string, JobHandler>();
  const queued = new Map<string, QueuedJob>();
  const running = new Set<Promise<void>>();
  const completedKeys = new LRUCache<string, true>({ max: KEEP_FINISHED });
  // Newest last; a Map keeps insertion order, so the oldest is dropped first.
  const failures = new Map<string, { run: FailedJobRun; job: OneOffJob }>();
  let completed = 0;
  let stopped = false;

  function fail(entry: QueuedJob, error: unknown): void {
    const key = keyOf(entry.job);
    queued.delete(key);
    const reason = error instanceof Error ? error.message : String(error);
    failures.set(key, { run: { queue, id: key, job: entry.job.name, reason, failedAt: new Date(), attemptsMade: entry.attemptsMade }, job: entry.job });
    if (failures.size > KEEP_FINISHED) failures.delete(failures.keys().next().value!);
    try {
      onError(error, entry.job);
    } catch {
      // The error reporter itself failed; nothing else can be done here.
    }
  }

  async function attempt(entry: QueuedJob): Promise<void> {
    entry.timer = null;
    const key = keyOf(entry.job);
    try {
      const handler = handlers.get(entry.job.name);
      if (!handler) throw new PermanentJobError(`No handler for jobs named ${entry.job.name}.`);
      await handler(entry.job.payload);
      queued.delete(key);
      completedKeys.set(key, true);
      completed++;
    } catch (error) {
      entry.attemptsMade++;
      if (error instanceof PermanentJobError || entry.attemptsMade >= JOB_RETRIES.attempts || stopped) return fail(entry, error);
      schedule(entry, retryDelayMs(entry.attemptsMade, firstRetryDelayMs));
    }
  }

  function schedule(entry: QueuedJob, delayMs: number): void {
    const timer = setTimeout(() => {
      const run = attempt(entry);
      running.add(run);
      void run.finally(() => running.delete(run));
    }, delayMs);
    timer.unref();
    entry.timer = timer;
  }

  const add = (job: OneOffJob) => {
    const entry = { job, attemptsMade: 0, timer: null };
    queued.set(keyOf(job), entry);
    schedule(entry, 0);
  };

  return {
    queue,

    handle(name, handler) {
      if (handlers.has(name)) throw new Error(`Jobs named ${name} already have a handler.`);
      handlers.set(name, handler);
    },

    async enqueue(job) {
      if (stopped) throw new DomainError("service_unavailable", "The server is shutting down; try again shortly.");
      const key = keyOf(job);
      if (queued.has(key) || completedKeys.has(key) || failures.has(key)) return;
      add(job);
    },

    async health() {
      const waiting = [...queued.values()].filter((entry) => entry.timer !== null);
      return {
        queue,
        runner: "in-process",
        counts: {
          waiting: waiting.filter((entry) => entry.attemptsMade === 0).length,
          delayed: waiting.filter((entry) => entry.attemptsMade > 0).length,
          active: running.size,
          completed,
          failed: failures.size,
        },
      };
    },

    async failed(limit) {
      return [...failures.values()].reverse().slice(0, limit).map(({ run }) => run);
    },

    async retry(runId) {
      const chosen = runId === undefined ? [...failures.keys()] : failures.has(runId) ? [runId] : [];
      if (runId !== undefined && chosen.length === 0) throw new DomainError("not_found", `No failed run ${runId} in ${queue}.`, "id");
      for (const key of chosen) {
        const { job } = failures.get(key)!;
        failures.delete(key);
        if (!stopped) add(job);
      }
      return chosen;
    },

    async stop() {
      stopped = true;
      for (const entry of queued.values()) if (entry.timer) clearTimeout(entry.timer);
      await Promise.all(running);
    },
  };
}
