import { Worker } from "bullmq";
import type { JobMonitor } from "../domain/jobs/job-monitor.js";
import type { JobScheduler, RecurringJob } from "../domain/jobs/recurring-job.js";
import { type BullmqSettings, bullmqMonitor, closeBullmq, openBullmqQueue } from "./bullmq-monitor.js";

const QUEUE = "recurring";
// Enough finished runs to look into a recent failure; older ones are dropped.
const KEEP_FINISHED = { count: 50 };
const REGISTER_RETRY_MS = 5_000;
const RECHECK_MIN_MS = 5_000;

/**
 * Recurring jobs as BullMQ job schedulers: every process registers the same
 * schedulers (an upsert, so never twice however many start), and each
 * occurrence is run by exactly one worker. With `work: false` (an API whose
 * jobs run in `npm run worker` processes) this process only registers them.
 */
export function createQueueScheduler(settings: BullmqSettings): JobScheduler & JobMonitor {
  const { logger, work } = settings;
  const { connection, queue, workerOptions } = openBullmqQueue(QUEUE, settings);
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
        { ...workerOptions, concurrency: 1 },
      )
    : null;
  worker?.on("failed", (job, error) => logger.error({ err: error, job: job?.name }, "scheduled job failed"));
  worker?.on("error", (error) => logger.warn({ err: error }, "job worker problem; retrying"));

  return {
    ...bullmqMonitor(queue),

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

    async stop() {
      stopped = true;
      for (const recheck of rechecks) clearInterval(recheck);
      await closeBullmq({ worker, queue, connection, logger });
    },
  };
}
