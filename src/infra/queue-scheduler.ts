import { setTimeout as delay } from "node:timers/promises";
import { type Job, Queue, Worker } from "bullmq";
import { DomainError } from "../domain/errors.js";
import type { FailedJobRun, JobMonitor } from "../domain/jobs/job-monitor.js";
import type { JobScheduler, RecurringJob } from "../domain/jobs/recurring-job.js";
import type { Logger } from "../domain/logger.js";
import { closeRedis, connectRedis } from "./redis.js";

const QUEUE = "recurring";
// Enough finished runs to look into a recent failure; older ones are dropped.
const KEEP_FINISHED = { count: 50 };
const REGISTER_RETRY_MS = 5_000;
// The queue's connection waits for Redis forever (redis.ts); an ops call must not.
const OPS_ANSWER_MS = 5_000;
// Long enough for a sweep in hand to finish; a stop that takes longer is waiting on Redis.
const STOP_WAIT_MS = 10_000;
const RECHECK_MIN_MS = 5_000;

/** `pending`, or a 503 once Redis has not answered for OPS_ANSWER_MS. */
async function answeredInTime<T>(pending: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DomainError("service_unavailable", `The job queue (Redis) did not answer within ${OPS_ANSWER_MS / 1_000} s.`)),
      OPS_ANSWER_MS,
    );
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const failedRun = (job: Job): FailedJobRun => ({
  queue: QUEUE,
  id: job.id!,
  job: job.name,
  reason: job.failedReason,
  failedAt: job.finishedOn ? new Date(job.finishedOn) : null,
  attemptsMade: job.attemptsMade,
});

/**
 * Recurring jobs as BullMQ job schedulers: every process registers the same
 * schedulers (an upsert, so never twice however many start), and each
 * occurrence is run by exactly one worker. With `work: false` (an API whose
 * jobs run in `npm run worker` processes) this process only registers them.
 */
export function createQueueScheduler({
  url,
  prefix,
  logger,
  work,
}: {
  url: string;
  prefix: string;
  logger: Logger;
  work: boolean;
}): JobScheduler & JobMonitor {
  const connection = connectRedis(url, "queue", logger);
  const queue = new Queue(QUEUE, { connection, prefix: `${prefix}bull` });
  const jobs = new Map<string, RecurringJob>();
  let stopped = false;
  const rechecks: NodeJS.Timeout[] = [];
  const worker = work
    ? new Worker(
        QUEUE,
        async (job) => {
          const recurring = jobs.get(job.name);
          if (!recurring) throw new Error(`No recurring job named ${job.name} in this instance.`);
          await recurring.run();
        },
        { connection, prefix: `${prefix}bull`, concurrency: 1 },
      )
    : null;
  worker?.on("failed", (job, error) => logger.error({ err: error, job: job?.name }, "scheduled job failed"));
  worker?.on("error", (error) => logger.warn({ err: error }, "job worker problem; retrying"));
  queue.on("error", (error) => logger.warn({ err: error }, "job queue problem; retrying"));

  /** The failed runs to retry: the one named (which must have failed), or all the queue keeps. */
  async function failedRuns(runId: string | undefined): Promise<Job[]> {
    if (runId === undefined) return answeredInTime(queue.getFailed());
    const job = await answeredInTime(queue.getJob(runId));
    if (!job || !(await answeredInTime(job.isFailed()))) throw new DomainError("not_found", `No failed run ${runId} in ${QUEUE}.`, "id");
    return [job];
  }

  return {
    queue: QUEUE,

    schedule(job) {
      if (jobs.has(job.name)) throw new Error(`A job named ${job.name} is already scheduled.`);
      jobs.set(job.name, job);
      const register = () =>
        queue
          .upsertJobScheduler(job.name, { every: job.everyMs }, { name: job.name, opts: { removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED } })
          .catch((error) => {
            // Redis may be down at start: keep trying, the job must not be silently lost.
            logger.warn({ err: error, job: job.name }, "could not register a scheduled job; retrying in 5 s");
            if (!stopped) setTimeout(register, REGISTER_RETRY_MS).unref();
          });
      void register();
      // Redis may lose its data (no persistence, a failover): a schedule that vanished is put back
      // within an interval of its own, instead of the job stopping until some process restarts.
      const recheck = setInterval(() => {
        if (stopped) return;
        queue.getJobScheduler(job.name).then(
          (scheduler) => {
            if (!scheduler) void register();
          },
          () => {}, // Redis away: the next recheck tries again.
        );
      }, Math.max(job.everyMs, RECHECK_MIN_MS));
      recheck.unref();
      rechecks.push(recheck);
    },

    async health() {
      return { queue: QUEUE, runner: "bullmq", counts: await answeredInTime(queue.getJobCounts()) };
    },

    async failed(limit) {
      return (await answeredInTime(queue.getFailed(0, limit - 1))).map(failedRun);
    },

    async retry(runId) {
      const runs = await failedRuns(runId);
      // Back to waiting: the next free worker of any instance runs it.
      for (const run of runs) await answeredInTime(run.retry("failed"));
      return runs.map((run) => run.id!);
    },

    async stop() {
      stopped = true;
      for (const recheck of rechecks) clearInterval(recheck);
      // Waits for the job in hand to finish: a stopped worker never abandons a run halfway.
      // With Redis gone, BullMQ would wait for it forever: past STOP_WAIT_MS the queue is closed by force.
      const graceful = (async () => {
        await worker?.close();
        await queue.close();
      })();
      const closedInTime = await Promise.race([graceful.then(() => true, () => true), delay(STOP_WAIT_MS, false, { ref: false })]);
      if (!closedInTime) {
        logger.warn({ waitedMs: STOP_WAIT_MS }, "job queue did not close in time (is Redis reachable?); closing it by force");
        connection.disconnect();
        void worker?.close(true).catch(() => {});
      }
      await closeRedis(connection);
    },
  };
}
