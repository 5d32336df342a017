import { and, eq, lt, sql } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db, Tx } from "./db.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import { INSUFFICIENT_BALANCE_MESSAGE, type Ledger } from "./ledger.js";
import { maxAffordableOutputTokens, type Pricing, priceRequest } from "./pricing.js";
import { accounts, type HoldStatus, holds } from "./schema/index.js";

// SPEC 5: a request reserves its worst-case cost before it starts (a hold), and
// settles it to the actual cost when it ends, so concurrent requests on one
// account can never spend more than the balance.
//
// Invariant: accounts.held_cents = Σ amount of the account's active holds.
// Every change to a hold happens under the account's row lock (always taken
// before any hold row, so no two paths can deadlock), and a hold leaves
// "active" only through a conditional UPDATE … WHERE status = 'active', so
// whoever closes it first (settle, release or sweeper) is the only one that
// gives its amount back.

export interface ReserveHoldInput {
  accountId: string;
  requestId: string;
  pricing: Pricing;
  inputTokens: number;
  /** The output budget the caller asked for (already within the model's limits). */
  requestedMaxTokens: number;
}

export interface ReservedHold {
  holdId: string;
  amountCents: number;
  /** requestedMaxTokens, or fewer when the available balance covers only fewer. */
  maxTokens: number;
}

export interface BillingDeps {
  db: Db;
  clock: Clock;
  ledger: Ledger;
  /** How long a hold lives before the sweeper may release it (a crashed process's holds). */
  holdTtlMs: number;
}

/** Expired holds are swept one account at a time, this many accounts per query. */
const SWEEP_BATCH_ACCOUNTS = 100;

const insufficientBalance = () => new DomainError("insufficient_balance", INSUFFICIENT_BALANCE_MESSAGE);

export function createBilling({ db, clock, ledger, holdTtlMs }: BillingDeps) {
  /** Locks the account that owns a request's hold; null when there is no such hold. */
  async function lockAccountOfHold(tx: Tx, requestId: string) {
    const [row] = await tx
      .select({ accountId: accounts.id, balanceCents: accounts.balanceCents, heldCents: accounts.heldCents })
      .from(holds)
      .innerJoin(accounts, eq(accounts.id, holds.accountId))
      .where(eq(holds.requestId, requestId))
      .for("update", { of: accounts });
    return row ?? null;
  }

  /**
   * Moves the hold from active to `status` and gives its amount back. Returns
   * the status it had before, read under the account lock, so it is current.
   */
  async function closeHold(
    tx: Tx,
    accountId: string,
    requestId: string,
    status: Exclude<HoldStatus, "active">,
  ): Promise<{ priorStatus: HoldStatus; releasedCents: number }> {
    const [closed] = await tx
      .update(holds)
      .set({ status, closedAt: clock.now() })
      .where(and(eq(holds.requestId, requestId), eq(holds.status, "active")))
      .returning({ amountCents: holds.amountCents });
    if (closed) {
      await tx
        .update(accounts)
        .set({ heldCents: sql`${accounts.heldCents} - ${closed.amountCents}` })
        .where(eq(accounts.id, accountId));
      return { priorStatus: "active", releasedCents: closed.amountCents };
    }
    const [hold] = await tx.select({ status: holds.status }).from(holds).where(eq(holds.requestId, requestId));
    return { priorStatus: hold!.status, releasedCents: 0 };
  }

  async function reserveHold(input: ReserveHoldInput): Promise<ReservedHold> {
    const { accountId, requestId, pricing, inputTokens, requestedMaxTokens } = input;
    if (!Number.isSafeInteger(requestedMaxTokens) || requestedMaxTokens < 1) {
      throw new RangeError(`requestedMaxTokens must be a positive integer, got ${requestedMaxTokens}`);
    }
    // SPEC 5: the worst case is the full requested output, and never more than 500 cents.
    const worstCase = priceRequest(pricing, { inputTokens, outputTokens: requestedMaxTokens });

    return db.transaction(async (tx) => {
      const [account] = await tx
        .select({ balanceCents: accounts.balanceCents, heldCents: accounts.heldCents })
        .from(accounts)
        .where(eq(accounts.id, accountId))
        .for("update");
      if (!account) throw new DomainError("not_found", `No account ${accountId}.`);

      // May be negative if a debit outside billing (a refund) landed while holds were open.
      const available = account.balanceCents - account.heldCents;
      let maxTokens = requestedMaxTokens;
      let amountCents = worstCase;
      if (available < worstCase) {
        // SPEC 5: shrink the answer to what the balance covers rather than refuse.
        maxTokens = Math.min(requestedMaxTokens, maxAffordableOutputTokens(pricing, inputTokens, available));
        if (maxTokens < 1) throw insufficientBalance();
        amountCents = priceRequest(pricing, { inputTokens, outputTokens: maxTokens });
      }

      const now = clock.now();
      const [hold] = await tx
        .insert(holds)
        .values({
          id: newId.hold(),
          accountId,
          requestId,
          amountCents,
          status: "active",
          createdAt: now,
          expiresAt: new Date(now.getTime() + holdTtlMs),
        })
        .onConflictDoNothing({ target: holds.requestId })
        .returning({ id: holds.id });
      // Request ids are generated per request: a second reserve is a caller bug, not a retry.
      if (!hold) throw new DomainError("conflict", `Request ${requestId} already has a hold.`);
      await tx
        .update(accounts)
        .set({ heldCents: sql`${accounts.heldCents} + ${amountCents}` })
        .where(eq(accounts.id, accountId));
      return { holdId: hold.id, amountCents, maxTokens };
    });
  }

  /**
   * Releases the hold and charges the actual cost, once: a second settle of the
   * same request charges nothing more and reports the first charge.
   *
   * The charge may be less than costCents. The hold covered the cost we
   * estimated (our prompt token count and the granted max_tokens); the cost is
   * priced from the upstream's reported usage, which can be higher (another
   * tokenizer, hidden prompt tokens). Any excess is taken only from money no
   * other request has reserved, never below zero; the caller records the
   * shortfall, since chargedCents < costCents.
   */
  async function settleHold({ requestId, costCents }: { requestId: string; costCents: number }): Promise<{ chargedCents: number }> {
    if (!Number.isSafeInteger(costCents) || costCents < 0) {
      throw new RangeError(`costCents must be a non-negative integer, got ${costCents}`);
    }
    const idempotencyKey = `usage:${requestId}`;

    return db.transaction(async (tx) => {
      const account = await lockAccountOfHold(tx, requestId);
      if (!account) throw new DomainError("not_found", `No hold for request ${requestId}.`);
      const { priorStatus, releasedCents } = await closeHold(tx, account.accountId, requestId, "settled");
      if (priorStatus === "settled" || priorStatus === "released") {
        // Closed by its request already: a repeated settle reports the first charge.
        const previous = await ledger.findByIdempotencyKey(tx, account.accountId, idempotencyKey);
        return { chargedCents: previous ? -previous.amountCents : 0 };
      }
      if (priorStatus === "expired") {
        // The request outlived the hold's TTL and the sweeper gave the hold back.
        // The output was delivered, so it is still charged (from unreserved
        // money only); marking it settled makes a repeat charge nothing.
        await tx
          .update(holds)
          .set({ status: "settled" })
          .where(and(eq(holds.requestId, requestId), eq(holds.status, "expired")));
      }
      if (costCents === 0) return { chargedCents: 0 };

      const otherHolds = account.heldCents - releasedCents;
      const chargedCents = Math.max(0, Math.min(costCents, account.balanceCents - otherHolds));
      if (chargedCents > 0) {
        await ledger.post(tx, { accountId: account.accountId, kind: "usage", amountCents: -chargedCents, idempotencyKey, requestId });
      }
      return { chargedCents };
    });
  }

  /** Gives a hold back without charging (the request failed before any output). */
  async function releaseHold({ requestId }: { requestId: string }): Promise<{ releasedCents: number }> {
    return db.transaction(async (tx) => {
      const account = await lockAccountOfHold(tx, requestId);
      if (!account) throw new DomainError("not_found", `No hold for request ${requestId}.`);
      const { releasedCents } = await closeHold(tx, account.accountId, requestId, "released");
      return { releasedCents };
    });
  }

  /** Expires one account's overdue holds in one short transaction; returns how many. */
  async function expireHoldsOf(accountId: string, now: Date): Promise<number> {
    return db.transaction(async (tx) => {
      // A plain lock (not SKIP LOCKED): an account busy with requests is locked
      // only for milliseconds at a time, and skipping it could postpone its
      // expired holds indefinitely. Other sweepers are excluded by the
      // conditional update below, not by the lock.
      await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, accountId)).for("update");
      const expired = await tx
        .update(holds)
        .set({ status: "expired", closedAt: now })
        .where(and(eq(holds.accountId, accountId), eq(holds.status, "active"), lt(holds.expiresAt, now)))
        .returning({ amountCents: holds.amountCents });
      if (expired.length === 0) return 0;
      const total = expired.reduce((sum, h) => sum + h.amountCents, 0);
      await tx
        .update(accounts)
        .set({ heldCents: sql`${accounts.heldCents} - ${total}` })
        .where(eq(accounts.id, accountId));
      return expired.length;
    });
  }

  /**
   * The sweeper (SPEC 5): releases active holds whose expiry has passed, left by
   * a process that crashed mid-request. Safe to run on several instances at once.
   */
  async function releaseExpiredHolds(): Promise<number> {
    const now = clock.now();
    let released = 0;
    for (;;) {
      const due = await db
        .selectDistinct({ accountId: holds.accountId })
        .from(holds)
        .where(and(eq(holds.status, "active"), lt(holds.expiresAt, now)))
        .limit(SWEEP_BATCH_ACCOUNTS);
      let releasedThisRound = 0;
      for (const { accountId } of due) releasedThisRound += await expireHoldsOf(accountId, now);
      released += releasedThisRound;
      // A short batch was the last; an empty round means another sweeper got there first.
      if (due.length < SWEEP_BATCH_ACCOUNTS || releasedThisRound === 0) return released;
    }
  }

  return { reserveHold, settleHold, releaseHold, releaseExpiredHolds };
}

export type Billing = ReturnType<typeof createBilling>;
