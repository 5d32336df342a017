import { and, asc, eq, isNotNull, lt } from "drizzle-orm";
import type { Clock } from "../clock.js";
import type { Db } from "../db.js";
import type { RecurringJob } from "../jobs/recurring-job.js";
import type { Logger } from "../logger.js";
import { type TopUp, topUps } from "../schema/index.js";
import type { PaymentEvents } from "./payment-events.js";
import type { StripeGateway } from "./stripe-port.js";

// Stripe's guidance is to reconcile as well as listen: a webhook event can be
// lost (queued in the memory of a process that died, an endpoint
// misconfigured, Stripe giving up its retries), and then a customer paid and
// was never credited. So top-ups still pending are checked against their
// Checkout Session, and what Stripe reports is applied by the events' own steps.

export const RECONCILE_TOP_UPS_EVERY_MS = 5 * 60_000;
// Webhooks arrive within seconds: a top-up younger than this is left to its event, not looked up.
export const RECONCILE_GRACE_MS = 2 * 60_000;
// Sessions read one after another: a run stays well within Stripe's read rate limit and its own interval.
export const RECONCILE_SESSIONS_PER_RUN = 100;

/**
 * Which top-ups a run looks at: pending ones with a session, past the grace
 * period, the least recently looked at first (never looked at: oldest first).
 *
 * No upper age bound. A top-up pending for longer than a session can live
 * (24 h at most) is exactly one whose closing event was lost, and one lookup
 * closes it, paid or expired; skipping it would leave a payer uncredited for
 * good. Closed top-ups (paid, failed, expired) are never looked at again, so
 * the set stays the open checkouts of the last day plus the few lost ones.
 *
 * Each top-up looked at and still pending (its session open, or the lookup
 * failed) has updated_at stamped, which sends it to the back of the next
 * run's order. Oldest first alone would re-read the same batch while more
 * than a batch of abandoned checkouts stay open (up to a day each), and a
 * newer paid one behind them would wait that long; stamping makes the runs
 * walk the whole pending set in turn.
 */
export function reconcileTopUpsJob(
  {
    db,
    clock,
    logger,
    stripe,
    payments,
  }: { db: Db; clock: Clock; logger: Logger; stripe: StripeGateway; payments: Pick<PaymentEvents, "applyRetrievedSession"> },
  { everyMs = RECONCILE_TOP_UPS_EVERY_MS, sessionsPerRun = RECONCILE_SESSIONS_PER_RUN } = {},
): RecurringJob {
  async function reconcile(topUp: TopUp): Promise<void> {
    const sessionId = topUp.checkoutSessionId!;
    try {
      const outcome = await payments.applyRetrievedSession(topUp, await stripe.retrieveCheckoutSession(sessionId));
      // Its event should have done this minutes ago: ops want to know events go missing.
      if (outcome !== "unchanged") {
        logger.warn({ topUpId: topUp.id, sessionId, outcome }, "pending top-up settled from its Checkout Session on Stripe: its webhook event had not been applied");
      }
    } catch (error) {
      // One top-up's trouble (Stripe down for it, a session that does not match) must not hold up the others.
      logger.warn({ err: error, topUpId: topUp.id, sessionId }, "could not reconcile a pending top-up with Stripe; the next run tries again");
    }
    await db
      .update(topUps)
      .set({ updatedAt: clock.now() })
      .where(and(eq(topUps.id, topUp.id), eq(topUps.status, "pending")));
  }

  return {
    name: "reconcile-top-ups",
    everyMs,
    async run() {
      const createdBefore = new Date(clock.now().getTime() - RECONCILE_GRACE_MS);
      const due = await db
        .select()
        .from(topUps)
        .where(and(eq(topUps.status, "pending"), isNotNull(topUps.checkoutSessionId), lt(topUps.createdAt, createdBefore)))
        .orderBy(asc(topUps.updatedAt), asc(topUps.id))
        .limit(sessionsPerRun);
      for (const topUp of due) await reconcile(topUp);
    },
  };
}
