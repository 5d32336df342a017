import { UnrecoverableError, Worker } from "bullmq";
import { JOB_RETRIES, type JobHandler, type JobQueue, PermanentJobError } from "../domain/jobs/job-queue.js";
import { answeredInTime, type BullmqSettings, bullmqMonitor, closeBullmq, openBullmqQueue } from "./bullmq-monitor.js";

const QUEUE = "one-off";
// A duplicate of a job still kept is not added again; older ones are dropped, so Redis holds a bounded number.
const KEEP_FINISHED = { count: 1_000 };
// Jobs are short database transactions; a few at once keep a backlog moving without crowding the pool.
const CONCURRENCY = 4;
// A job of a worker that died is taken up again within about LOCK_MS + STALLED_CHECK_MS: a paid top-up is credited
// seconds after a crash, not a minute. Live workers renew their locks every LOCK_MS / 2; a job run twice after a
// long pause is harmless, as every handler is idempotent.
const LOCK_MS = 10_000;
const STALLED_CHECK_MS = 5_000;

/**
 * One-off jobs in a BullMQ queue shared by every instance: any process may
 * enqueue; those with `work` (JOBS=in-process, or `npm run worker`) run them.
 * The job id is the job's own (a Stripe event id), so a duplicate collapses
 * into the job still kept; a failing job is retried with exponential backoff,
 * and the job of a worker that died is taken up again once its lock expires.
 */
export function createBullmqJobQueue(settings: BullmqSettings): JobQueue {
  const { logger, work } = settings;
  const { connection, queue, workerOptions } = openBullmqQueue(QUEUE, settings);
  const handlers = new Map<string, JobHandler>();
  const worker = work
    ? new Worker(
        QUEUE,
        async (job) => {
          const handler = handlers.get(job.name);
          if (!handler) throw new UnrecoverableError(`No handler for jobs named ${job.name}.`);
          try {
            await handler(job.data);
          } catch (error) {
            if (error instanceof PermanentJobError) throw new UnrecoverableError(error.message);
            throw error;
          }
        },
        { ...workerOptions, concurrency: CONCURRENCY, lockDuration: LOCK_MS, stalledInterval: STALLED_CHECK_MS },
      )
    : null;
  worker?.on("failed", (job, error) => {
    const retried = job && !(error instanceof UnrecoverableError) && job.attemptsMade < (job.opts.attempts ?? 1);
    if (retried) logger.warn({ err: error, job: job.name, jobId: job.id, attemptsMade: job.attemptsMade }, "job failed; it will be retried");
    else logger.error({ err: error, job: job?.name, jobId: job?.id }, "job failed for good; ops can retry it (jobs.retry)");
  });
  worker?.on("error", (error) => logger.warn({ err: error }, "job worker problem; retrying"));

  return {
    ...bullmqMonitor(queue),

    handle(name, handler) {
      if (handlers.has(name)) throw new Error(`Jobs named ${name} already have a handler.`);
      handlers.set(name, handler);
    },

    async enqueue({ name, id, payload }) {
      await answeredInTime(
        queue.add(name, payload, {
          // BullMQ refuses ':' in custom ids; '/' keeps the name and the id apart.
          jobId: `${name}/${id}`,
          attempts: JOB_RETRIES.attempts,
          backoff: { type: "exponential", delay: JOB_RETRIES.firstDelayMs },
          removeOnComplete: KEEP_FINISHED,
          removeOnFail: KEEP_FINISHED,
        }),
      );
    },

    stop: () => closeBullmq({ worker, queue, connection, logger }),
  };
}
