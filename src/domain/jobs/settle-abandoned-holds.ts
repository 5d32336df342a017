import type { Billing } from "../billing.js";
import type { RecurringJob } from "./recurring-job.js";

/**
 * SPEC 5: holds left by a crashed process expire and are settled by a sweeper:
 * each is charged what its last checkpoint says was delivered, and recorded.
 */
export function settleAbandonedHoldsJob(billing: Pick<Billing, "settleAbandonedHolds">, { everyMs }: { everyMs: number }): RecurringJob {
  return {
    name: "settle-abandoned-holds",
    everyMs,
    async run() {
      await billing.settleAbandonedHolds();
    },
  };
}
