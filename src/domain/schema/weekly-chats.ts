import { sql } from "drizzle-orm";
import { bigint, check, date, pgTable, primaryKey } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";

/**
 * One account's chats in one week (SPEC 10), keyed by the week's Monday (UTC).
 * Changed only under the account's row lock, by the statements that reserve
 * and close holds and by a Weekly Boost, so the counts are exact across
 * instances. `reserved` counts plan-covered chats still running: they hold
 * their place in the allowance until they end, and give it back when they
 * end before any output (not billable, SPEC 5); `used` counts those that
 * ended billable. `plan_cap` is the plan's cap as of the week's latest chat:
 * the reserve statement decides on the row's newest version alone (see
 * billing.ts), so the cap travels with the row it is compared against.
 */
export const weeklyChatUsage = pgTable(
  "weekly_chat_usage",
  {
    accountId: accountRef(),
    weekStart: date("week_start", { mode: "string" }).notNull(),
    used: bigint("used", { mode: "number" }).notNull().default(0),
    reserved: bigint("reserved", { mode: "number" }).notNull().default(0),
    boosts: bigint("boosts", { mode: "number" }).notNull().default(0),
    planCap: bigint("plan_cap", { mode: "number" }).notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.accountId, t.weekStart] }),
    check("weekly_chat_usage_counts_non_negative", sql`${t.used} >= 0 and ${t.reserved} >= 0 and ${t.boosts} >= 0`),
  ],
);

export type WeeklyChatUsage = typeof weeklyChatUsage.$inferSelect;
