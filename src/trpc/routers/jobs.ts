import { z } from "zod";
import { failedJobsInput, listAuditInput, retryJobsInput } from "../../domain/inputs.js";
import { opsMutation, opsProcedure, router } from "../trpc.js";

export const jobsRouter = router({
  /** Runs per state for each queue: BullMQ's shared queue with Redis, and this instance's in-process jobs. */
  stats: opsProcedure.input(z.object({}).optional()).query(({ ctx }) => ctx.services.jobs.stats()),
  failed: opsProcedure.input(failedJobsInput).query(({ ctx, input }) => ctx.services.jobs.failed(input)),
  // Nothing in the database changes: the audit row commits once the queue has taken the retry.
  retry: opsMutation.input(retryJobsInput).mutation(({ ctx, input }) => ctx.services.jobs.retry(input)),
});

export const auditRouter = router({
  list: opsProcedure.input(listAuditInput).query(({ ctx, input }) => ctx.services.audit.list(input)),
});
