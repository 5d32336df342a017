import { pgTable, text, uniqueIndex } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { cents, timestampTz, tokens } from "./columns.js";

// SPEC 3: end users and conversations belong to one account and keep running totals.
const usageTotals = () => ({
  requestCount: tokens("request_count").notNull().default(0),
  inputTokens: tokens("input_tokens").notNull().default(0),
  outputTokens: tokens("output_tokens").notNull().default(0),
  costCents: cents("cost_cents").notNull().default(0),
  firstSeenAt: timestampTz("first_seen_at").notNull().defaultNow(),
  lastSeenAt: timestampTz("last_seen_at").notNull().defaultNow(),
});

export const endUsers = pgTable(
  "end_users",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    externalId: text("external_id").notNull(),
    displayName: text("display_name"),
    ...usageTotals(),
  },
  (t) => [uniqueIndex("end_users_account_external_idx").on(t.accountId, t.externalId)],
);

export const conversations = pgTable(
  "conversations",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    externalId: text("external_id").notNull(),
    endUserId: text("end_user_id").references(() => endUsers.id),
    ...usageTotals(),
  },
  (t) => [uniqueIndex("conversations_account_external_idx").on(t.accountId, t.externalId)],
);

export type EndUser = typeof endUsers.$inferSelect;
export type Conversation = typeof conversations.$inferSelect;
