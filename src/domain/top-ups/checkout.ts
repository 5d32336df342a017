import { and, count, eq, gt, min } from "drizzle-orm";
import { z } from "zod";
import type { Clock } from "../clock.js";
import type { Db } from "../db.js";
import { DomainError, RetryLaterError } from "../errors.js";
import { newId } from "../ids.js";
import { newestFirstPage, type Page, type PageRequest } from "../keyset-page.js";
import type { Logger } from "../logger.js";
import { accounts, type TopUp, topUps } from "../schema/index.js";
import { type StripeGateway, TOP_UPS_UNAVAILABLE_MESSAGE } from "./stripe-port.js";

// SPEC 5: a top-up is $5 to $1,000, in whole cents.
export const TOP_UP_MIN_CENTS = 500;
export const TOP_UP_MAX_CENTS = 100_000;
const AMOUNT_RULE = `A top-up is ${TOP_UP_MIN_CENTS} to ${TOP_UP_MAX_CENTS} cents ($5 to $1,000), in whole cents.`;
export const topUpAmountCents = z.number().int(AMOUNT_RULE).min(TOP_UP_MIN_CENTS, AMOUNT_RULE).max(TOP_UP_MAX_CENTS, AMOUNT_RULE);

// Each checkout is a Stripe API call on our key: enough for a person retrying, too few to flood Stripe with.
export const TOP_UP_CHECKOUTS_PER_HOUR = 10;
const HOUR_MS = 3_600_000;

/** Where Stripe sends the payer back to: the web dashboard's pages for a paid and a cancelled top-up (web/src/pages/credits.tsx). */
const returnUrls = (baseUrl: string) => {
  const credits = `${baseUrl.replace(/\/+$/, "")}/dashboard/credits`;
  // Stripe fills in {CHECKOUT_SESSION_ID} itself.
  return { successUrl: `${credits}/success?session_id={CHECKOUT_SESSION_ID}`, cancelUrl: `${credits}/cancel` };
};

export interface TopUpCheckoutInput {
  accountId: string;
  amountCents: number;
  /** This server's own URL as the caller reached it: where the payer returns when PUBLIC_BASE_URL is unset. */
  serverUrl: string;
}

export function createTopUpCheckouts({
  db,
  clock,
  logger,
  stripe,
  publicBaseUrl,
}: {
  db: Db;
  clock: Clock;
  logger: Logger;
  /** null without Stripe keys: top-ups are refused, everything else works. */
  stripe: StripeGateway | null;
  publicBaseUrl: string | undefined;
}) {
  /** The row is written before Stripe is called, so every session Stripe opens has an owner here. */
  async function recordPendingTopUp(accountId: string, amountCents: number): Promise<TopUp> {
    const now = clock.now();
    return db.transaction(async (tx) => {
      // The account row lock serialises concurrent checkouts, so the hourly cap is exact.
      const [account] = await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, accountId)).for("update");
      if (!account) throw new DomainError("not_found", `No account ${accountId}.`);
      const [recent] = await tx
        .select({ n: count(), oldest: min(topUps.createdAt) })
        .from(topUps)
        .where(and(eq(topUps.accountId, accountId), gt(topUps.createdAt, new Date(now.getTime() - HOUR_MS))));
      if ((recent?.n ?? 0) >= TOP_UP_CHECKOUTS_PER_HOUR) {
        // A slot frees when the oldest checkout of the hour leaves it.
        const retryAfterMs = Math.max(1_000, (recent?.oldest?.getTime() ?? now.getTime()) + HOUR_MS - now.getTime());
        throw new RetryLaterError(
          "rate_limit_exceeded",
          `At most ${TOP_UP_CHECKOUTS_PER_HOUR} top-up checkouts may be started per hour. Try again later.`,
          retryAfterMs,
        );
      }
      const [row] = await tx
        .insert(topUps)
        .values({ id: newId.topUp(), accountId, amountCents, currency: "usd", createdAt: now, updatedAt: now })
        .returning();
      return row!;
    });
  }

  return {
    /** Opens a Stripe Checkout Session for `amountCents` (already checked against topUpAmountCents) and returns where to pay. */
    async createCheckout({ accountId, amountCents, serverUrl }: TopUpCheckoutInput): Promise<{ url: string; topUp: TopUp }> {
      if (!stripe) throw new DomainError("top_ups_unavailable", TOP_UPS_UNAVAILABLE_MESSAGE);
      const topUp = await recordPendingTopUp(accountId, amountCents);
      let session: { id: string; url: string };
      try {
        session = await stripe.createCheckoutSession({
          topUpId: topUp.id,
          accountId,
          amountCents,
          currency: "usd",
          ...returnUrls(publicBaseUrl ?? serverUrl),
        });
      } catch (error) {
        await db
          .update(topUps)
          .set({ status: "failed", updatedAt: clock.now() })
          .where(and(eq(topUps.id, topUp.id), eq(topUps.status, "pending")));
        logger.error({ err: error, topUpId: topUp.id }, "Stripe refused or did not answer a Checkout Session request");
        // Stripe's own message names its internals (keys, request ids): it goes to the log, not to the owner.
        throw new DomainError("upstream_error", "The payment provider could not open a checkout just now. Try again in a moment.", null, {
          cause: error,
        });
      }
      const [opened] = await db
        .update(topUps)
        .set({ checkoutSessionId: session.id, checkoutUrl: session.url, updatedAt: clock.now() })
        .where(eq(topUps.id, topUp.id))
        .returning();
      return { url: session.url, topUp: opened! };
    },

    /** The account's top-ups, newest first. */
    list(accountId: string, page: PageRequest): Promise<Page<TopUp>> {
      const ofAccount = eq(topUps.accountId, accountId);
      return newestFirstPage(db, { table: topUps, at: topUps.createdAt, id: topUps.id }, ofAccount, page, ofAccount);
    },
  };
}

export type TopUpCheckouts = ReturnType<typeof createTopUpCheckouts>;
