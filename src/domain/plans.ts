import { sql, type SQL } from "drizzle-orm";

// SPEC 10: plans and their weekly chat quotas. A chat within the week's
// allowance (the plan's cap plus 500 per Weekly Boost bought that week) is
// covered by the plan and costs no credits; past it, credits pay as overflow,
// exactly as for pay-as-you-go. The week starts Monday 00:00 UTC.

export const PLAN_NAMES = ["free", "core", "plus", "pro", "teams", "enterprise", "payg"] as const;

export type PlanName = (typeof PLAN_NAMES)[number];

/** Chats a week: a number caps them, "unlimited" covers every chat, null (pay-as-you-go) covers none. */
export const WEEKLY_CHAT_CAPS: Record<PlanName, number | "unlimited" | null> = {
  free: 50,
  core: 500,
  plus: 1_500,
  pro: "unlimited",
  teams: "unlimited",
  enterprise: "unlimited",
  payg: null,
};

/** What one Weekly Boost adds to the current week, and what it costs in credits. */
export const WEEKLY_BOOST = { chats: 500, priceCents: 500 } as const;

const WEEK_MS = 7 * 24 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The plan's weekly cap; an unknown name (a row older than the plan list) is treated as pay-as-you-go. */
export const weeklyChatCap = (plan: string): number | "unlimited" | null =>
  (WEEKLY_CHAT_CAPS as Record<string, number | "unlimited" | null>)[plan] ?? null;

/** Whether the plan covers chats at all (capped or unlimited): only then is a chat reserved against the week. */
export const plansCoverChats = (plan: string): boolean => weeklyChatCap(plan) !== null;

/** Monday 00:00 UTC of the week `at` falls in. */
export function weekStartOf(at: Date): Date {
  const midnight = Math.floor(at.getTime() / DAY_MS) * DAY_MS;
  const daysSinceMonday = (new Date(midnight).getUTCDay() + 6) % 7;
  return new Date(midnight - daysSinceMonday * DAY_MS);
}

export const nextWeekStart = (weekStart: Date): Date => new Date(weekStart.getTime() + WEEK_MS);

/** The week as the database keys it: its Monday, YYYY-MM-DD. */
export const weekKey = (weekStart: Date): string => weekStart.toISOString().slice(0, 10);

/** A cap no week reaches: what "unlimited" is in the reserve statement's arithmetic (exact as a JS number, boosts added). */
export const UNLIMITED_CAP = 2 ** 50;

/**
 * The plan's weekly cap in SQL, from a plan column: built from the table
 * above, so the statement and the code cannot disagree. 0 for pay-as-you-go
 * (and any unknown plan): nothing is covered.
 */
export function weeklyCapSql(plan: SQL): SQL {
  const cases = Object.entries(WEEKLY_CHAT_CAPS).map(([name, cap]) => {
    const chats = cap === null ? 0 : cap === "unlimited" ? UNLIMITED_CAP : cap;
    return sql.raw(`when '${name}' then ${chats}`);
  });
  return sql`(case ${plan} ${sql.join(cases, sql` `)} else 0 end)::bigint`;
}

/** The allowance of a week, in code: null when there is no cap (unlimited or pay-as-you-go). */
export function weeklyAllowance(plan: string, boosts: number): number | null {
  const cap = weeklyChatCap(plan);
  return typeof cap === "number" ? cap + WEEKLY_BOOST.chats * boosts : null;
}

/** What a capped plan's chat answers tell the caller (SPEC 10's X-Weekly-Chats-* headers). */
export interface WeeklyChats {
  limit: number;
  remaining: number;
  resetsAt: Date;
}
