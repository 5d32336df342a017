/**
 * A job that runs on a fixed interval, independent of what runs it: the
 * in-process scheduler (embedded mode) or a queue's repeatable job (production).
 */
export interface RecurringJob {
  /** Unique among scheduled jobs; used in logs and as the queue's job name. */
  name: string;
  /** Pause between the end of one run and the start of the next. */
  everyMs: number;
  run(): Promise<void>;
}

/** Runs recurring jobs: on timers in this process, or as a queue's repeatable jobs shared by every instance. */
export interface JobScheduler {
  /** Runs `job` every `job.everyMs`, first after one interval. */
  schedule(job: RecurringJob): void;
  /** Stops scheduling and waits for runs in progress to finish. */
  stop(): Promise<void>;
}
