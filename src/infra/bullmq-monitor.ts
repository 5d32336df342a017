import { setTimeout as delay } from "node:timers/promises";
import { type Job, Queue, type Worker } from "bullmq";
import type { Redis } from "ioredis";
import { DomainError } from "../domain/errors.js";
import type { FailedJobRun, JobMonitor } from "../domain/jobs/job-monitor.js";
import type { Logger } from "../domain/logger.js";
import { closeRedis, connectRedis } from "./redis.js";

// What every BullMQ queue of ours shares: how it opens, the ops view of it, and how it closes.

// The queue's connection waits for Redis forever (redis.ts); an ops call must not.
const OPS_ANSWER_MS = 5_000;
// Long enough for a job in hand to finish; a stop that takes longer is waiting on Redis.
const STOP_WAIT_MS = 10_000;

/** Where our BullMQ queues live, and whether this process runs their jobs (JOBS=in-process, or `npm run worker`). */
export interface BullmqSettings {
  url: string;
  prefix: string;
  logger: Logger;
  work: boolean;
}

/** A queue on a connection of its own, under the key prefix all our queues share, and the options its Worker takes. */
export function openBullmqQueue(name: string, { url, prefix, logger }: BullmqSettings) {
  const connection = connectRedis(url, "queue", logger);
  const workerOptions = { connection, prefix: `${prefix}bull` };
  const queue = new Queue(name, workerOptions);
  queue.on("error", (error) => logger.warn({ err: error }, "job queue problem; retrying"));
  return { connection, queue, workerOptions };
}

/** `pending`, or a 503 once Redis has not answered for OPS_ANSWER_MS. */
export async function answeredInTime<T>(pending: Promise<T>): Promise<T> {
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

/** SPEC 12's queue health and retry of failed runs, for one BullMQ queue. */
export function bullmqMonitor(queue: Queue): JobMonitor {
  const failedRun = (job: Job): FailedJobRun => ({
    queue: queue.name,
    id: job.id!,
    job: job.name,
    reason: job.failedReason,
    failedAt: job.finishedOn ? new Date(job.finishedOn) : null,
    attemptsMade: job.attemptsMade,
  });

  /** The failed runs to retry: the one named (which must have failed), or all the queue keeps. */
  async function failedRuns(runId: string | undefined): Promise<Job[]> {
    if (runId === undefined) return answeredInTime(queue.getFailed());
    const job = await answeredInTime(queue.getJob(runId));
    if (!job || !(await answeredInTime(job.isFailed()))) throw new DomainError("not_found", `No failed run ${runId} in ${queue.name}.`, "id");
    return [job];
  }

  return {
    queue: queue.name,
    async health() {
      return { queue: queue.name, runner: "bullmq", counts: await answeredInTime(queue.getJobCounts()) };
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
  };
}

/**
 * Waits for the jobs in hand to finish (a stopped worker never abandons a run
 * halfway), then closes. With Redis gone BullMQ would wait forever: past
 * STOP_WAIT_MS the queue is closed by force.
 */
export async function closeBullmq({ worker, queue, connection, logger }: { worker: Worker | null; queue: Queue; connection: Redis; logger: Logger }) {
  const graceful = (async () => {
    await worker?.close();
    await queue.close();
  })();
  const closedInTime = await Promise.race([graceful.then(() => true, () => true), delay(STOP_WAIT_MS, false, { ref: false })]);
  if (!closedInTime) {
    logger.warn({ waitedMs: STOP_WAIT_MS, queue: queue.name }, "job queue did not close in time (is Redis reachable?); closing it by force");
    connection.disconnect();
    void worker?.close(true).catch(() => {});
  }
  await closeRedis(connection);
}
