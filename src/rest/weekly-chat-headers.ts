import type { Context } from "hono";
import type { WeeklyChats } from "../domain/plans.js";

/** SPEC 10: a capped plan's chat answers (and their 429, through renderError) say where the week stands; uncapped plans get none of these. */
export function setWeeklyChatHeaders(c: Context, weeklyChats: WeeklyChats | undefined): void {
  if (!weeklyChats) return;
  c.header("X-Weekly-Chats-Limit", String(weeklyChats.limit));
  c.header("X-Weekly-Chats-Remaining", String(weeklyChats.remaining));
  c.header("X-Weekly-Chats-Reset", String(Math.floor(weeklyChats.resetsAt.getTime() / 1_000)));
}
