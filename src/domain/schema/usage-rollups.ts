import { sql } from "drizzle-orm";
import { index, pgTable, text, unique } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { cents, timestampTz, tokens } from "./columns.js";

/**
 * Which rows a grain keeps, and how wide its time buckets are. Each grain sums
 * the request log by fewer dimensions than the next, so a usage query reads the
 * coarsest one that still has every dimension it filters or groups by:
 *
 *   account_hour          per UTC hour: every request (a year is at most 8,784 rows);
 *   key_model_hour        per UTC hour, key and model: every request;
 *   key_model_quarter     the same per quarter hour, for zones whose offset is not whole hours;
 *   end_user_quarter      per quarter hour, key, model and end user: requests with an end user;
 *   conversation_hour     per UTC hour, key, model, end user and conversation: requests in a conversation;
 *   conversation_quarter  the same per quarter hour.
 *
 * Quarter hours because every IANA zone's offset is a whole number of quarter
 * hours, so hour and day buckets in any zone are exact sums of these rows. The
 * end-user and conversation grains leave out requests without one: most
 * requests have their own conversation, so keeping them would make the
 * conversation grain as large as the request log; the query gets the requests
 * without one as the total less the rest.
 */
export const usageGrains = [
  "account_hour",
  "key_model_hour",
  "key_model_quarter",
  "end_user_quarter",
  "conversation_hour",
  "conversation_quarter",
] as const;
export type UsageGrain = (typeof usageGrains)[number];

/**
 * The request log summed per grain (above), kept by triggers on `requests`
 * in the transaction that writes them (migration 0006), for the dashboard's
 * usage series (SPEC 11).
 */
export const usageRollups = pgTable(
  "usage_rollups",
  {
    accountId: accountRef(),
    grain: text("grain").$type<UsageGrain>().notNull(),
    bucketStart: timestampTz("bucket_start").notNull(),
    apiKeyId: text("api_key_id"),
    // Null only in account_hour, which sums over every model.
    model: text("model"),
    endUserId: text("end_user_id"),
    conversationId: text("conversation_id"),
    requests: tokens("requests").notNull().default(0),
    inputTokens: tokens("input_tokens").notNull().default(0),
    outputTokens: tokens("output_tokens").notNull().default(0),
    costCents: cents("cost_cents").notNull().default(0),
  },
  (t) => [
    // Its index also serves the series' scan: one account, one grain, a range of buckets.
    // Migration 0006 adds the sums to it (INCLUDE, which drizzle cannot declare) so that scan reads only the index.
    unique("usage_rollups_bucket_key")
      .on(t.accountId, t.grain, t.bucketStart, t.model, t.apiKeyId, t.endUserId, t.conversationId)
      .nullsNotDistinct(),
    // A filter on a few end users or conversations reads only their rows (0006 adds INCLUDE columns here too).
    index("usage_rollups_end_user_idx").on(t.accountId, t.endUserId, t.bucketStart).where(sql`${t.grain} = 'end_user_quarter'`),
    index("usage_rollups_conversation_idx")
      .on(t.accountId, t.grain, t.conversationId, t.bucketStart)
      .where(sql`${t.grain} in ('conversation_hour', 'conversation_quarter')`),
  ],
);

export type UsageRollup = typeof usageRollups.$inferSelect;
