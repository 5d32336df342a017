import type { Billing } from "../billing.js";
import type { RecurringJob } from "./recurring-job.js";

/**
 * Holds normally live for one request. The sweeper only finds those left by a
 * process that died mid-request, so once a minute returns them soon enough
 * without adding load.
 */
export const RELEASE_EXPIRED_HOLDS_EVERY_MS = 60_000;

/** SPEC 5: holds left by a crashed process expire and are released by a sweeper job. */
export function releaseExpiredHoldsJob(
  billing: Pick<Billing, "releaseExpiredHolds">,
  { everyMs = RELEASE_EXPIRED_HOLDS_EVERY_MS }: { everyMs?: number } = {},
): RecurringJob {
  return {
    name: "release-expired-holds",
    everyMs,
    async run() {
      await billing.releaseExpiredHolds();
    },
  };
}
