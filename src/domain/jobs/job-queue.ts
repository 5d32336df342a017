import type { JobMonitor } from "./job-monitor.js";

// One-off jobs (a Stripe event to apply, say), as opposed to recurring ones:
// enqueued once, run once by some worker, retried with a growing pause while
// they fail. Handlers must be idempotent: a job may run again after a crash.

export interface OneOffJob {
  /** Which handler runs it. */
  name: string;
  /** Unique per name: a job enqueued again while one with its id is still kept is not added twice. */
  id: string;
  /** Plain JSON: it may travel through Redis. */
  payload: unknown;
}

export type JobHandler = (payload: unknown) => Promise<void>;

export interface JobQueue extends JobMonitor {
  /** Runs jobs of this name with `handler`, in a process that works the queue (else registering is harmless). */
  handle(name: string, handler: JobHandler): void;
  /** Resolves once the job is safely queued; rejects (service_unavailable) when it cannot be. */
  enqueue(job: OneOffJob): Promise<void>;
  /** Takes no new jobs and waits for the ones running to finish. */
  stop(): Promise<void>;
}

/** A failure no retry can fix (a payload that contradicts the database): the job fails at once, for ops to look into. */
export class PermanentJobError extends Error {
  override readonly name = "PermanentJobError";
}

/**
 * How often, and how patiently, a failing job is retried: after 1, 2, 4 … 8,192 s,
 * about 4.5 hours in all; long enough for an event that waits on another
 * (a refund on a payment not yet credited) to outlast Stripe's first retries.
 */
export const JOB_RETRIES = { attempts: 15, firstDelayMs: 1_000 } as const;

/** The pause before the attempt after `attemptsMade` failed ones. */
export const retryDelayMs = (attemptsMade: number, firstDelayMs: number = JOB_RETRIES.firstDelayMs): number =>
  firstDelayMs * 2 ** (attemptsMade - 1);
