import { check, index, pgTable, text } from "drizzle-orm/pg-core";
import { sql } from "drizzle-orm";
import { accountRef } from "./accounts.js";
import { cents, timestampTz } from "./columns.js";

/**
 * pending: a Checkout Session is open; paid: its payment succeeded and the
 * ledger was credited; failed: the payment failed (or Stripe refused the
 * session); expired: the session ran out unpaid.
 */
export type TopUpStatus = "pending" | "paid" | "failed" | "expired";

/** A Stripe Checkout top-up (SPEC 5): the row is written before Stripe is called, so every session has an owner. */
export const topUps = pgTable(
  "top_ups",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    /** What the owner asked for; the ledger is credited with what Stripe says was paid. */
    amountCents: cents("amount_cents").notNull(),
    currency: text("currency").notNull().default("usd"),
    status: text("status").$type<TopUpStatus>().notNull().default("pending"),
    checkoutSessionId: text("checkout_session_id").unique(),
    checkoutUrl: text("checkout_url"),
    /** Known once paid; charge.refunded events find their top-up by it. */
    paymentIntentId: text("payment_intent_id").unique(),
    creditedCents: cents("credited_cents").notNull().default(0),
    /** Refunded so far: Stripe reports refunds as a running total per charge. */
    refundedCents: cents("refunded_cents").notNull().default(0),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
    updatedAt: timestampTz("updated_at").notNull().defaultNow(),
    paidAt: timestampTz("paid_at"),
  },
  (t) => [
    index("top_ups_account_created_idx").on(t.accountId, t.createdAt),
    check("top_ups_amount_positive", sql`${t.amountCents} > 0`),
    check("top_ups_refund_within_credit", sql`${t.refundedCents} >= 0 and ${t.refundedCents} <= ${t.creditedCents}`),
  ],
);

export type TopUp = typeof topUps.$inferSelect;
