import { pgTable, text, unique } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { cents, timestampTz, tokens } from "./columns.js";

/**
 * The request log summed per quarter hour and per (key, model, end user,
 * conversation), for the dashboard's usage series (SPEC 11). A quarter hour,
 * not an hour: every IANA zone's offset is a whole number of quarter hours, so
 * hour and day buckets in any zone are exact sums of these rows.
 */
export const usageRollups = pgTable(
  "usage_rollups",
  {
    accountId: accountRef(),
    bucketStart: timestampTz("bucket_start").notNull(),
    apiKeyId: text("api_key_id"),
    model: text("model").notNull(),
    endUserId: text("end_user_id"),
    conversationId: text("conversation_id"),
    requests: tokens("requests").notNull().default(0),
    inputTokens: tokens("input_tokens").notNull().default(0),
    outputTokens: tokens("output_tokens").notNull().default(0),
    costCents: cents("cost_cents").notNull().default(0),
  },
  (t) => [
    // Its index also serves the series' scan: one account, a range of buckets.
    unique("usage_rollups_bucket_key")
      .on(t.accountId, t.bucketStart, t.model, t.apiKeyId, t.endUserId, t.conversationId)
      .nullsNotDistinct(),
  ],
);

export type UsageRollup = typeof usageRollups.$inferSelect;
