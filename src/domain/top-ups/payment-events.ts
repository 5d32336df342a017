import { and, eq, isNull, or, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Clock } from "../clock.js";
import type { Db, Tx } from "../db.js";
import { PermanentJobError } from "../jobs/job-queue.js";
import type { Ledger } from "../ledger.js";
import type { Logger } from "../logger.js";
import { type TopUp, topUps } from "../schema/index.js";
import type { VerifiedStripeEvent } from "./stripe-port.js";

// SPEC 5: what Stripe's events do to top-ups and the ledger, run as queued
// jobs (and by reconcile.ts for an event that never came). Each event may
// arrive any number of times and in any order, so every step is idempotent:
// a row lock on the top-up, a status that only moves forward, and a ledger
// idempotency key per Checkout Session and per refund total.

export const STRIPE_EVENT_JOB = "stripe-event";

const HANDLED_EVENTS = new Set([
  "checkout.session.completed",
  "checkout.session.async_payment_succeeded",
  "checkout.session.async_payment_failed",
  "checkout.session.expired",
  "charge.refunded",
]);

/** Events of other types are acknowledged and never queued. */
export const isHandledStripeEvent = (type: string): boolean => HANDLED_EVENTS.has(type);

// Only the fields used, and as Stripe may send them: expandable ids come as a string or an object.
const expandableId = z
  .union([z.string(), z.object({ id: z.string() })])
  .nullish()
  .transform((value) => (typeof value === "string" ? value : (value?.id ?? null)));
const metadata = z
  .record(z.string(), z.string())
  .nullish()
  .transform((value) => value ?? {});
const checkoutSessionSchema = z.object({
  id: z.string(),
  status: z.string().nullish(),
  payment_status: z.string(),
  amount_total: z.number().int().nullish(),
  currency: z.string().nullish(),
  client_reference_id: z.string().nullish(),
  metadata,
  payment_intent: expandableId,
});
const chargeSchema = z.object({
  id: z.string(),
  amount_refunded: z.number().int().nonnegative(),
  currency: z.string(),
  metadata,
  payment_intent: expandableId,
});
type CheckoutSession = z.infer<typeof checkoutSessionSchema>;
type Charge = z.infer<typeof chargeSchema>;

const eventSchema = z.object({ id: z.string(), type: z.string(), object: z.unknown() });

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new PermanentJobError(`Not a Stripe ${what} this version understands: ${result.error.issues[0]?.message}`);
  return result.data;
}

// An unpaid completion (a bank debit under way) is credited once it is paid, by async_payment_succeeded.
const isPaid = (session: CheckoutSession): boolean => session.payment_status === "paid";

/** The top-up a session or charge names in the metadata we gave Stripe (client_reference_id too, for a session). */
const topUpIdOf = (object: { metadata: Record<string, string>; client_reference_id?: string | null | undefined }) =>
  object.metadata.top_up_id ?? object.client_reference_id ?? null;

const lockTopUp = async (tx: Tx, where: SQL): Promise<TopUp | null> =>
  (await tx.select().from(topUps).where(where).for("update"))[0] ?? null;

export function createPaymentEvents({ db, clock, ledger, logger }: { db: Db; clock: Clock; ledger: Ledger; logger: Logger }) {
  /** The session must be the one this top-up opened, for its account and amount: anything else is not ours to credit. */
  function assertSessionOf(topUp: TopUp, session: CheckoutSession): void {
    const matches =
      (topUp.checkoutSessionId === null || topUp.checkoutSessionId === session.id) &&
      session.metadata.account_id === topUp.accountId &&
      session.metadata.amount_cents === String(topUp.amountCents);
    if (!matches) throw new PermanentJobError(`Checkout Session ${session.id} does not match top-up ${topUp.id}; nothing was credited.`);
  }

  /** Credits what Stripe charged, once per session, whatever the top-up's status was (a paid session is paid). */
  async function creditPaidSession(session: CheckoutSession): Promise<void> {
    const topUpId = topUpIdOf(session);
    if (!topUpId) {
      // `stripe trigger` fixtures, or payments made outside SentX on the same Stripe account.
      logger.info({ sessionId: session.id }, "Checkout Session without a SentX top-up; ignored");
      return;
    }
    await db.transaction(async (tx) => {
      const topUp = await lockTopUp(tx, eq(topUps.id, topUpId));
      if (!topUp) {
        logger.warn({ sessionId: session.id, topUpId }, "Checkout Session names a top-up this database does not have; ignored");
        return;
      }
      assertSessionOf(topUp, session);
      if (topUp.status === "paid") return;
      const amountCents = session.amount_total ?? 0;
      if (session.currency !== "usd" || amountCents <= 0) {
        throw new PermanentJobError(`Checkout Session ${session.id} charged ${amountCents} ${session.currency}; only USD top-ups are credited.`);
      }
      await ledger.post(tx, {
        accountId: topUp.accountId,
        kind: "topup",
        amountCents,
        idempotencyKey: `stripe-checkout:${session.id}`,
        memo: `Stripe top-up ${topUp.id}`,
      });
      const now = clock.now();
      await tx
        .update(topUps)
        .set({
          status: "paid",
          creditedCents: amountCents,
          checkoutSessionId: session.id,
          paymentIntentId: session.payment_intent,
          paidAt: now,
          updatedAt: now,
        })
        .where(eq(topUps.id, topUp.id));
    });
  }

  /** A session that ended unpaid: only a pending top-up takes the status, so a paid one is never downgraded. */
  async function closeUnpaidSession(session: CheckoutSession, status: "failed" | "expired"): Promise<void> {
    const topUpId = topUpIdOf(session);
    if (!topUpId) return;
    await db
      .update(topUps)
      .set({ status, checkoutSessionId: session.id, updatedAt: clock.now() })
      .where(
        and(
          eq(topUps.id, topUpId),
          eq(topUps.status, "pending"),
          or(isNull(topUps.checkoutSessionId), eq(topUps.checkoutSessionId, session.id)),
        ),
      );
  }

  /** The top-up a charge paid for: by its PaymentIntent once credited, else by the metadata it carries. */
  async function lockTopUpOfCharge(tx: Tx, charge: Charge): Promise<TopUp | null> {
    const byPaymentIntent = charge.payment_intent ? await lockTopUp(tx, eq(topUps.paymentIntentId, charge.payment_intent)) : null;
    if (byPaymentIntent) return byPaymentIntent;
    const topUpId = topUpIdOf(charge);
    const byMetadata = topUpId ? await lockTopUp(tx, eq(topUps.id, topUpId)) : null;
    if (byMetadata && charge.metadata.account_id !== byMetadata.accountId) {
      throw new PermanentJobError(`Charge ${charge.id} names top-up ${byMetadata.id} of another account; nothing was refunded.`);
    }
    return byMetadata;
  }

  /**
   * Debits what was refunded since the last refund applied. Stripe reports a
   * charge's refunds as a running total, so an older event (a smaller total)
   * or a repeated one finds nothing left to debit.
   */
  async function applyRefund(charge: Charge): Promise<void> {
    await db.transaction(async (tx) => {
      const topUp = await lockTopUpOfCharge(tx, charge);
      if (!topUp) {
        logger.info({ chargeId: charge.id }, "refunded charge is not a SentX top-up; ignored");
        return;
      }
      // Thrown, the job is retried until the payment's own event has credited it (events come in any order).
      if (topUp.status !== "paid") throw new Error(`Top-up ${topUp.id} is not credited yet; its refund waits for it.`);
      if (charge.currency !== "usd" || charge.amount_refunded > topUp.creditedCents) {
        throw new PermanentJobError(`Charge ${charge.id} refunds ${charge.amount_refunded} ${charge.currency}, more than top-up ${topUp.id} credited.`);
      }
      const amountCents = charge.amount_refunded - topUp.refundedCents;
      if (amountCents <= 0) return;
      await ledger.postStripeRefund(tx, {
        accountId: topUp.accountId,
        chargeId: charge.id,
        refundedTotalCents: charge.amount_refunded,
        amountCents,
        memo: `Stripe refund of top-up ${topUp.id}`,
      });
      await tx.update(topUps).set({ refundedCents: charge.amount_refunded, updatedAt: clock.now() }).where(eq(topUps.id, topUp.id));
    });
  }

  return {
    /** Runs one queued event (the job payload a VerifiedStripeEvent). */
    async apply(payload: unknown): Promise<void> {
      const event: VerifiedStripeEvent = parsed(eventSchema, payload, "event");
      switch (event.type) {
        case "checkout.session.completed": {
          const session = parsed(checkoutSessionSchema, event.object, "Checkout Session");
          if (isPaid(session)) await creditPaidSession(session);
          return;
        }
        case "checkout.session.async_payment_succeeded":
          return creditPaidSession(parsed(checkoutSessionSchema, event.object, "Checkout Session"));
        case "checkout.session.async_payment_failed":
          return closeUnpaidSession(parsed(checkoutSessionSchema, event.object, "Checkout Session"), "failed");
        case "checkout.session.expired":
          return closeUnpaidSession(parsed(checkoutSessionSchema, event.object, "Checkout Session"), "expired");
        case "charge.refunded":
          return applyRefund(parsed(chargeSchema, event.object, "Charge"));
        default:
          logger.info({ eventId: event.id, type: event.type }, "Stripe event of a type top-ups do not use; ignored");
      }
    },

    /**
     * Brings `topUp` in line with its Checkout Session as Stripe's API reports
     * it now (reconcile.ts, for events that never came), by the steps its
     * events take. An open session changes nothing, nor does a complete unpaid
     * one: its delayed payment may still succeed or fail, and the session
     * alone does not tell which.
     */
    async applyRetrievedSession(topUp: TopUp, object: unknown): Promise<"paid" | "expired" | "unchanged"> {
      const session = parsed(checkoutSessionSchema, object, "Checkout Session");
      if (session.id !== topUp.checkoutSessionId || topUpIdOf(session) !== topUp.id) {
        throw new PermanentJobError(`Checkout Session ${session.id} (of top-up ${topUpIdOf(session)}) is not top-up ${topUp.id}'s; nothing was applied.`);
      }
      if (isPaid(session)) {
        await creditPaidSession(session);
        return "paid";
      }
      if (session.status === "expired") {
        await closeUnpaidSession(session, "expired");
        return "expired";
      }
      return "unchanged";
    },
  };
}

export type PaymentEvents = ReturnType<typeof createPaymentEvents>;
