import type { Files } from "../files/files.js";
import type { RecurringJob } from "./recurring-job.js";

/**
 * SPEC 7: expired files give up their bytes; bytes no live file uses are
 * removed. Expired files already answer 404 (every read checks expires_at),
 * so this only reclaims storage and need not run often.
 */
export function fileRetentionJob(files: Pick<Files, "expireDue" | "removeUnreferencedBlobs">, { everyMs }: { everyMs: number }): RecurringJob {
  return {
    name: "file-retention",
    everyMs,
    async run() {
      // Batches keep each transaction short; a backlog drains within one run.
      while ((await files.expireDue()) > 0);
      while ((await files.removeUnreferencedBlobs()) > 0);
    },
  };
}
