import type { Context } from "hono";
import { WeeklyQuotaExceededError } from "../domain/billing.js";
import type { WeeklyChats } from "../domain/plans.js";

/** SPEC 10: a capped plan's chat answers say where the week stands; uncapped plans get none of these. */
export function setWeeklyChatHeaders(c: Context, weeklyChats: WeeklyChats | undefined): void {
  if (!weeklyChats) return;
  c.header("X-Weekly-Chats-Limit", String(weeklyChats.limit));
  c.header("X-Weekly-Chats-Remaining", String(weeklyChats.remaining));
  c.header("X-Weekly-Chats-Reset", String(Math.floor(weeklyChats.resetsAt.getTime() / 1_000)));
}

/** Runs a chat surface's call and sets the weekly headers from its answer, or from its 429 when the week is used up. */
export async function withWeeklyChatHeaders<T extends { weeklyChats?: WeeklyChats }>(c: Context, call: () => Promise<T>): Promise<T> {
  try {
    const answer = await call();
    setWeeklyChatHeaders(c, answer.weeklyChats);
    return answer;
  } catch (error) {
    if (error instanceof WeeklyQuotaExceededError) setWeeklyChatHeaders(c, error.weeklyChats);
    throw error;
  }
}
