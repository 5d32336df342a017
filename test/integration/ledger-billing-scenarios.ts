import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { type Billing, createBilling } from "../../src/domain/billing.js";
import { manualClock } from "../../src/domain/clock.js";
import type { Db } from "../../src/domain/db.js";
import { DomainError } from "../../src/domain/errors.js";
import { newId } from "../../src/domain/ids.js";
import { createLedger } from "../../src/domain/ledger.js";
import type { Pricing } from "../../src/domain/pricing.js";
import { accounts, holds, ledgerEntries } from "../../src/domain/schema/index.js";
import { createTestAccount } from "../support/factories.js";
import { moneyState } from "../support/queries.js";

// The ledger and billing scenarios every database driver must pass. The
// PostgreSQL files and the PGlite file both register them; tests that need
// real concurrent connections live in the PostgreSQL files only.

/** SPEC 5's default price: 300 ¢ per 1M input tokens, 1,000 ¢ per 1M output tokens. */
export const DEFAULT_PRICING: Pricing = { inputCentsPerMillion: 300, outputCentsPerMillion: 1000 };
export const HOLD_TTL_MS = 15 * 60_000;
export const INSUFFICIENT = { code: "insufficient_balance", message: "Balance too low. Top up at sentx.ai." };

/** A ledger and billing on one database, with a clock the test can move. */
export function createMoneyServices(db: Db, start?: Date) {
  const clock = manualClock(start);
  const ledger = createLedger({ clock });
  const billing = createBilling({ db, clock, ledger, holdTtlMs: HOLD_TTL_MS });
  return { clock, ledger, billing };
}

/** reserveHold at the default price; by default 1,000 in + 3,000 out, a 3-cent worst case. */
export const reserve = (
  billing: Billing,
  accountId: string,
  { requestId = newId.request(), inputTokens = 1_000, requestedMaxTokens = 3_000 } = {},
) => billing.reserveHold({ accountId, requestId, pricing: DEFAULT_PRICING, inputTokens, requestedMaxTokens });

export const holdOf = async (db: Db, requestId: string) =>
  (await db.select().from(holds).where(eq(holds.requestId, requestId)))[0];

/** Σ of the account's active holds: held_cents must always equal it. */
export async function activeHoldsCents(db: Db, accountId: string): Promise<number> {
  const [row] = await db
    .select({ total: sql<string>`coalesce(sum(${holds.amountCents}), 0)` })
    .from(holds)
    .where(and(eq(holds.accountId, accountId), eq(holds.status, "active")));
  return Number(row!.total);
}

/** What a promise rejected with, for asserting on a DomainError's code and message. */
export const rejectionOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => expect.unreachable("expected a rejection"),
    (error: unknown) => error,
  );

export function ledgerScenarios(getDb: () => Db): void {
  describe("ledger", () => {
    it("credits and debits, recording each balance after, and keeps the balance equal to the sum", async () => {
      const db = getDb();
      const { ledger } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });

      const accountId = account.id;
      const debit = await ledger.post(db, { accountId, kind: "usage", amountCents: -30, idempotencyKey: "u1", requestId: "req_1" });
      const topup = await ledger.post(db, { accountId, kind: "topup", amountCents: 500, idempotencyKey: "t1", memo: "Stripe" });

      expect(debit).toMatchObject({
        created: true,
        entry: { amountCents: -30, balanceAfterCents: 70, kind: "usage", requestId: "req_1" },
      });
      expect(topup).toMatchObject({ created: true, entry: { amountCents: 500, balanceAfterCents: 570, memo: "Stripe", requestId: null } });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 570, ledgerSumCents: 570 });
    });

    it("returns the existing entry for a repeated idempotency key and does not credit twice", async () => {
      const db = getDb();
      const { ledger } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 0 });
      const grant = { accountId: account.id, kind: "grant" as const, amountCents: 250, idempotencyKey: "grant:invoice-7" };

      const first = await ledger.post(db, grant);
      const again = await ledger.post(db, grant);
      // The key decides, not the payload: a retry with another amount is still the same entry.
      const changed = await ledger.post(db, { ...grant, amountCents: 999 });

      expect(first.created).toBe(true);
      expect(again).toEqual({ entry: first.entry, created: false });
      expect(changed).toEqual({ entry: first.entry, created: false });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 250, ledgerSumCents: 250 });
      // The same key on another account is another entry.
      const other = await createTestAccount(db, { balanceCents: 0 });
      expect((await ledger.post(db, { ...grant, accountId: other.id })).created).toBe(true);
    });

    it("refuses a debit that would take the balance below zero, and writes nothing", async () => {
      const db = getDb();
      const { ledger } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 5 });

      const overdraft = { accountId: account.id, kind: "usage" as const, amountCents: -6, idempotencyKey: "u-over" };
      const error = await rejectionOf(ledger.post(db, overdraft));
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject(INSUFFICIENT);
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 5, ledgerSumCents: 5 });

      const exact = await ledger.post(db, { accountId: account.id, kind: "usage", amountCents: -5, idempotencyKey: "u-exact" });
      expect(exact.entry.balanceAfterCents).toBe(0);
      // Retrying that debit now that the balance is 0 is a success, not an overdraft.
      const retried = await ledger.post(db, { accountId: account.id, kind: "usage", amountCents: -5, idempotencyKey: "u-exact" });
      expect(retried).toEqual({ entry: exact.entry, created: false });
    });

    it("rejects an unknown account and a 0-cent or fractional entry", async () => {
      const db = getDb();
      const { ledger } = createMoneyServices(db);
      const account = await createTestAccount(db);

      const grant = { accountId: account.id, kind: "grant" as const, amountCents: 1, idempotencyKey: "k" };
      expect(await rejectionOf(ledger.post(db, { ...grant, accountId: "acct_missing" }))).toMatchObject({ code: "not_found" });
      for (const amountCents of [0, 1.5]) {
        expect(await rejectionOf(ledger.post(db, { ...grant, amountCents }))).toMatchObject({
          code: "invalid_request_error",
          param: "amountCents",
        });
      }
    });

    it("posts inside the caller's transaction, so it rolls back with it", async () => {
      const db = getDb();
      const { ledger } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 10 });

      await rejectionOf(
        db.transaction(async (tx) => {
          await ledger.post(tx, { accountId: account.id, kind: "grant", amountCents: 40, idempotencyKey: "rolled-back" });
          expect((await moneyState(tx as unknown as Db, account.id)).balanceCents).toBe(50);
          throw new Error("abort");
        }),
      );
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 10, ledgerSumCents: 10 });
    });

    it("lists newest first, a page at a time", async () => {
      const db = getDb();
      const { ledger, clock } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 0 });
      for (let i = 1; i <= 5; i++) {
        clock.advance(1_000);
        await ledger.post(db, { accountId: account.id, kind: "grant", amountCents: i, idempotencyKey: `g${i}` });
      }
      // Two entries in the same millisecond still page without gaps or repeats.
      await ledger.post(db, { accountId: account.id, kind: "grant", amountCents: 6, idempotencyKey: "g6" });

      const seen: number[] = [];
      let before: string | undefined;
      for (;;) {
        const page = await ledger.list(db, account.id, { limit: 2, before });
        if (page.length === 0) break;
        seen.push(...page.map((e) => e.amountCents));
        before = page.at(-1)!.id;
      }
      expect(seen.slice(2)).toEqual([4, 3, 2, 1]);
      expect(seen.slice(0, 2).sort()).toEqual([5, 6]);

      expect(await rejectionOf(ledger.list(db, account.id, { limit: 2, before: "le_unknown" }))).toMatchObject({ code: "not_found" });
    });

    it("verify() finds a deliberately corrupted balance, and only that one", async () => {
      const db = getDb();
      const { ledger } = createMoneyServices(db);
      const healthy = await createTestAccount(db, { balanceCents: 30 });
      const corrupted = await createTestAccount(db, { balanceCents: 20 });
      expect((await ledger.verify(db)).map((m) => m.accountId)).not.toContain(corrupted.id);

      // Bypass the ledger, as a bad manual fix would.
      await db.update(accounts).set({ balanceCents: sql`${accounts.balanceCents} + 7` }).where(eq(accounts.id, corrupted.id));
      try {
        const mismatches = await ledger.verify(db);
        expect(mismatches).toEqual([{ accountId: corrupted.id, balanceCents: 27, ledgerSumCents: 20 }]);
        expect(mismatches.map((m) => m.accountId)).not.toContain(healthy.id);
      } finally {
        await db.update(accounts).set({ balanceCents: 20 }).where(eq(accounts.id, corrupted.id));
      }
      expect(await ledger.verify(db)).toEqual([]);
    });
  });
}

export function billingScenarios(getDb: () => Db): void {
  describe("billing", () => {
    it("holds the worst case when the balance covers it, leaving max_tokens as asked", async () => {
      const db = getDb();
      const { billing, clock } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const requestId = newId.request();

      // 1,000 in × 300 + 3,000 out × 1,000 = 3,300,000 → 3 cents.
      const hold = await reserve(billing, account.id, { requestId });

      expect(hold).toEqual({ holdId: expect.stringMatching(/^hold_/), amountCents: 3, maxTokens: 3_000 });
      expect(await holdOf(db, requestId)).toMatchObject({
        id: hold.holdId,
        accountId: account.id,
        amountCents: 3,
        status: "active",
        expiresAt: new Date(clock.now().getTime() + HOLD_TTL_MS),
      });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 100, heldCents: 3, ledgerSumCents: 100 });
    });

    it("reduces max_tokens to what the available balance covers", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 2 });

      // Worst case 1,000 in + 4,096 out = 4.396 → 4 cents > 2. With 2 cents:
      // 300,000 + N × 1,000 < 2,500,000 → N = 2,199, which costs 2.499 → 2 cents.
      const hold = await reserve(billing, account.id, { requestedMaxTokens: 4_096 });
      expect(hold).toMatchObject({ amountCents: 2, maxTokens: 2_199 });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 2, heldCents: 2 });
    });

    it("counts other requests' holds as spent", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 4 });

      expect(await reserve(billing, account.id)).toMatchObject({ amountCents: 3, maxTokens: 3_000 });
      // 1 cent left: 300,000 + N × 1,000 < 1,500,000 → N = 1,199.
      expect(await reserve(billing, account.id)).toMatchObject({ amountCents: 1, maxTokens: 1_199 });
      expect(await rejectionOf(reserve(billing, account.id))).toMatchObject(INSUFFICIENT);
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 4, heldCents: 4 });
    });

    it("refuses with 402 and the exact message when not even 1 cent is available", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const empty = await createTestAccount(db, { balanceCents: 0 });
      const requestId = newId.request();

      const error = await rejectionOf(reserve(billing, empty.id, { requestId }));
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ ...INSUFFICIENT, status: 402, type: "insufficient_balance" });
      expect(await holdOf(db, requestId)).toBeUndefined();
      expect(await moneyState(db, empty.id)).toMatchObject({ balanceCents: 0, heldCents: 0 });

      // 2 cents, but the prompt alone (10,000 × 300 = 3 cents) is more than that.
      const poor = await createTestAccount(db, { balanceCents: 2 });
      expect(await rejectionOf(reserve(billing, poor.id, { inputTokens: 10_000 }))).toMatchObject(INSUFFICIENT);
    });

    it("rejects an unknown account, and a second hold for the same request", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      expect(await rejectionOf(reserve(billing, "acct_missing"))).toMatchObject({ code: "not_found" });

      const account = await createTestAccount(db, { balanceCents: 50 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId });
      expect(await rejectionOf(reserve(billing, account.id, { requestId }))).toMatchObject({ code: "conflict" });
      expect(await moneyState(db, account.id)).toMatchObject({ heldCents: 3 });
    });

    it("settles a hold to the actual cost through the ledger", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId });

      expect(await billing.settleHold({ requestId, costCents: 2 })).toEqual({ chargedCents: 2 });

      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 98, heldCents: 0, ledgerSumCents: 98 });
      expect(money.usageEntries).toEqual([
        expect.objectContaining({ amountCents: -2, balanceAfterCents: 98, requestId, idempotencyKey: `usage:${requestId}` }),
      ]);
      expect(await holdOf(db, requestId)).toMatchObject({ status: "settled", closedAt: expect.any(Date) });
    });

    it("settles idempotently: a second settle charges nothing more and reports the first charge", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId });

      const first = await billing.settleHold({ requestId, costCents: 3 });
      const second = await billing.settleHold({ requestId, costCents: 3 });
      const different = await billing.settleHold({ requestId, costCents: 9 });

      expect([first, second, different]).toEqual([{ chargedCents: 3 }, { chargedCents: 3 }, { chargedCents: 3 }]);
      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 97, heldCents: 0, ledgerSumCents: 97 });
      expect(money.usageEntries).toHaveLength(1);
    });

    it("releases without a charge for a cost of 0, and for releaseHold; a later settle charges nothing", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const free = newId.request();
      const failed = newId.request();
      await reserve(billing, account.id, { requestId: free });
      await reserve(billing, account.id, { requestId: failed });

      expect(await billing.settleHold({ requestId: free, costCents: 0 })).toEqual({ chargedCents: 0 });
      expect(await billing.releaseHold({ requestId: failed })).toEqual({ releasedCents: 3 });
      expect(await billing.releaseHold({ requestId: failed })).toEqual({ releasedCents: 0 });
      expect(await billing.settleHold({ requestId: free, costCents: 5 })).toEqual({ chargedCents: 0 });
      expect(await billing.settleHold({ requestId: failed, costCents: 5 })).toEqual({ chargedCents: 0 });

      expect(await holdOf(db, failed)).toMatchObject({ status: "released" });
      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 100, heldCents: 0, ledgerSumCents: 100 });
      expect(money.usageEntries).toHaveLength(0);
      expect(await rejectionOf(billing.settleHold({ requestId: "req_unknown", costCents: 1 }))).toMatchObject({ code: "not_found" });
      expect(await rejectionOf(billing.releaseHold({ requestId: "req_unknown" }))).toMatchObject({ code: "not_found" });
    });

    it("charges a cost above the hold only from money no other request holds, never below zero", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 10 });
      const a = newId.request();
      const b = newId.request();
      expect(await reserve(billing, account.id, { requestId: a })).toMatchObject({ amountCents: 3 });
      expect(await reserve(billing, account.id, { requestId: b, requestedMaxTokens: 5_000 })).toMatchObject({ amountCents: 5 });

      // The upstream reported more than we held for: 10 − 5 (b's hold) = 5 cents may be taken.
      expect(await billing.settleHold({ requestId: a, costCents: 8 })).toEqual({ chargedCents: 5 });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 5, heldCents: 5 });
      // b's hold is intact: its own cost is covered in full; the overage finds nothing left.
      expect(await billing.settleHold({ requestId: b, costCents: 7 })).toEqual({ chargedCents: 5 });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 0, heldCents: 0, ledgerSumCents: 0 });
    });

    it("the sweeper releases expired holds (manual clock), and a late settle still charges once", async () => {
      const db = getDb();
      // Sweeps see every hold in the database: a test that sweeps runs in an
      // epoch of its own, before the default 2026 of the other tests' clocks,
      // and leaves no active hold behind.
      const { billing, clock } = createMoneyServices(db, new Date("2001-01-01T00:00:00Z"));
      const account = await createTestAccount(db, { balanceCents: 20 });
      const crashed = [newId.request(), newId.request()];
      const late = newId.request();
      for (const requestId of [...crashed, late]) await reserve(billing, account.id, { requestId });
      clock.advance(HOLD_TTL_MS / 2);
      const fresh = newId.request();
      await reserve(billing, account.id, { requestId: fresh });
      expect(await moneyState(db, account.id)).toMatchObject({ heldCents: 12 });

      expect(await billing.releaseExpiredHolds()).toBe(0); // nothing has expired yet
      clock.advance(HOLD_TTL_MS / 2 + 1);
      expect(await billing.releaseExpiredHolds()).toBe(3);
      expect(await billing.releaseExpiredHolds()).toBe(0);

      expect(await holdOf(db, crashed[0]!)).toMatchObject({ status: "expired", closedAt: clock.now() });
      expect(await holdOf(db, fresh)).toMatchObject({ status: "active" });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 20, heldCents: 3 });

      // A request that outlived its hold is still billed, from unreserved money, once.
      expect(await billing.settleHold({ requestId: late, costCents: 2 })).toEqual({ chargedCents: 2 });
      expect(await billing.settleHold({ requestId: late, costCents: 2 })).toEqual({ chargedCents: 2 });
      expect(await holdOf(db, late)).toMatchObject({ status: "settled" });
      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 18, heldCents: 3, ledgerSumCents: 18 });
      expect(money.usageEntries).toHaveLength(1);
      await billing.releaseHold({ requestId: fresh }); // leave nothing for another test's sweep
    });

    it("keeps the ledger consistent through a mixed run", async () => {
      const db = getDb();
      const { billing, ledger } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 50 });
      for (let i = 0; i < 10; i++) {
        const requestId = newId.request();
        try {
          await reserve(billing, account.id, { requestId, inputTokens: 2_000 * i, requestedMaxTokens: 1_000 + 500 * i });
        } catch (error) {
          expect(error).toMatchObject(INSUFFICIENT);
          continue;
        }
        if (i % 3 === 0) await billing.releaseHold({ requestId });
        else await billing.settleHold({ requestId, costCents: i });
      }
      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ heldCents: 0, balanceCents: money.ledgerSumCents });
      expect((await ledger.verify(db)).map((m) => m.accountId)).not.toContain(account.id);
      const [{ count }] = (await db
        .select({ count: sql<number>`count(*)::int` })
        .from(ledgerEntries)
        .where(eq(ledgerEntries.accountId, account.id))) as [{ count: number }];
      expect(count).toBe(1 + money.usageEntries.length);
    });
  });
}
