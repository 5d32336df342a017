import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { type Billing, createBilling } from "../../src/domain/billing.js";
import { manualClock } from "../../src/domain/clock.js";
import type { Db } from "../../src/domain/db.js";
import { DomainError } from "../../src/domain/errors.js";
import { newId } from "../../src/domain/ids.js";
import { createLedger } from "../../src/domain/ledger.js";
import type { Pricing } from "../../src/domain/pricing.js";
import { accounts, endUsers, holds, ledgerEntries } from "../../src/domain/schema/index.js";
import { createTestAccount } from "../support/factories.js";
import { moneyState, requestRow } from "../support/queries.js";

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
  const billing = createBilling({ db, clock, holdTtlMs: HOLD_TTL_MS });
  return { clock, ledger, billing };
}

/** What each test hold's request record is made of. */
export const TEST_REQUEST = { apiKeyId: null, endpoint: "/v1/chat/completions", model: "sentx-v1", stream: true, identity: {} };

/** reserveHold at the default price; by default 1,000 in + 3,000 out, a 3-cent worst case. */
export const reserve = (
  billing: Billing,
  accountId: string,
  { requestId = newId.request(), inputTokens = 1_000, requestedMaxTokens = 3_000, request = TEST_REQUEST } = {},
) => billing.reserveHold({ accountId, requestId, pricing: DEFAULT_PRICING, inputTokens, requestedMaxTokens, request });

/** Ends a held request as a success costing `costCents` (0: released unbilled). */
export const settle = (billing: Billing, requestId: string, costCents: number) =>
  billing.settleHold({
    requestId,
    costCents,
    ending: { status: "succeeded", httpStatus: 200, errorCode: null, inputTokens: 10, outputTokens: costCents * 1_000 },
  });

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

      expect(hold).toEqual({ amountCents: 3, maxTokens: 3_000, limitedByBalance: false });
      expect(await holdOf(db, requestId)).toMatchObject({
        accountId: account.id,
        amountCents: 3,
        status: "active",
        ...TEST_REQUEST,
        deliveredCostCents: 0,
        expiresAt: new Date(clock.now().getTime() + HOLD_TTL_MS),
      });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 100, heldCents: 3, ledgerSumCents: 100 });
    });

    it("takes all of a small balance and reduces max_tokens to what it covers", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 2 });

      // Worst case 1,000 in + 4,096 out = 4.396 → 4 cents > 2. With 2 cents:
      // 300,000 + N × 1,000 < 2,500,000 → N = 2,199, which costs 2.499 → 2 cents.
      const hold = await reserve(billing, account.id, { requestedMaxTokens: 4_096 });
      expect(hold).toEqual({ amountCents: 2, maxTokens: 2_199, limitedByBalance: true });
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

    it("refuses with 402 and the exact message when not even 1 cent is available, before anything is counted", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const empty = await createTestAccount(db, { balanceCents: 0 });
      const requestId = newId.request();

      const error = await rejectionOf(reserve(billing, empty.id, { requestId }));
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ ...INSUFFICIENT, status: 402, type: "insufficient_balance" });
      expect(await holdOf(db, requestId)).toBeUndefined();
      expect(await moneyState(db, empty.id)).toMatchObject({ balanceCents: 0, heldCents: 0 });
    });

    it("holds a small balance even when the input's upper bound alone exceeds it: the exact count decides later", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      // 2 cents, but the estimate (10,000 × 300 = 3 cents) is more than that.
      const poor = await createTestAccount(db, { balanceCents: 2 });
      expect(await reserve(billing, poor.id, { inputTokens: 10_000 })).toEqual({ amountCents: 2, maxTokens: 0, limitedByBalance: true });
    });

    it("refits a hold to the exact input: grows it within the balance, shrinks the output, or refuses", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 5 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId, inputTokens: 100, requestedMaxTokens: 1_000 }); // 1 cent

      // The documents came to 10,000 tokens: 3 + 1 = 4 cents, and the balance has it.
      const refit = { requestId, pricing: DEFAULT_PRICING, inputTokens: 10_000, requestedMaxTokens: 1_000 };
      expect(await billing.refitHold(refit)).toEqual({ amountCents: 4, maxTokens: 1_000 });
      expect(await moneyState(db, account.id)).toMatchObject({ heldCents: 4 });
      // 20,000 tokens: 6 cents of input alone is more than the 5 there are.
      expect(await rejectionOf(billing.refitHold({ ...refit, inputTokens: 20_000 }))).toMatchObject(INSUFFICIENT);
      // 15,000 tokens (4.5 cents): the 5 cents cover 999 output tokens (5.499 → 5 cents).
      expect(await billing.refitHold({ ...refit, inputTokens: 15_000 })).toEqual({ amountCents: 5, maxTokens: 999 });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 5, heldCents: 5 });
      await settle(billing, requestId, 0);
      // A hold ended meanwhile (by the sweeper, say) cannot be resized: the request stops with 503.
      expect(await rejectionOf(billing.refitHold(refit))).toMatchObject({ code: "service_unavailable" });
      expect(await rejectionOf(billing.refitHold({ ...refit, requestId: "req_unknown" }))).toMatchObject({ code: "not_found" });
    });

    it("rejects an unknown account; a repeated reserve (a retry after a lost commit) returns the same hold", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      expect(await rejectionOf(reserve(billing, "acct_missing"))).toMatchObject({ code: "not_found" });

      const account = await createTestAccount(db, { balanceCents: 50 });
      const requestId = newId.request();
      const first = await reserve(billing, account.id, { requestId });
      expect(await reserve(billing, account.id, { requestId })).toEqual(first);
      expect(await moneyState(db, account.id)).toMatchObject({ heldCents: 3 });
    });

    it("settles a hold to the actual cost through the ledger, with its request record in the same transaction", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId, request: { ...TEST_REQUEST, identity: { userId: "u-1", sessionId: "s-1" } } });

      expect(await settle(billing, requestId, 2)).toEqual({ chargedCents: 2, settledNow: true, endedBySweeper: false });

      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 98, heldCents: 0, ledgerSumCents: 98 });
      expect(money.usageEntries).toEqual([
        expect.objectContaining({ amountCents: -2, balanceAfterCents: 98, requestId, idempotencyKey: `usage:${requestId}` }),
      ]);
      expect(await holdOf(db, requestId)).toMatchObject({ status: "settled", closedAt: expect.any(Date) });
      expect(await requestRow(db, requestId)).toMatchObject({
        status: "succeeded",
        costCents: 2,
        model: "sentx-v1",
        stream: true,
        outputTokens: 2_000,
        endUserId: expect.stringMatching(/^eu_/),
        conversationId: expect.stringMatching(/^conv_/),
      });
      const [endUser] = await db.select().from(endUsers).where(eq(endUsers.accountId, account.id));
      expect(endUser).toMatchObject({ externalId: "u-1", requestCount: 1, costCents: 2 });
    });

    it("a settle whose record cannot be written charges nothing: the hold stays for a retry", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId });
      // The database refuses this one request's record, as a full disk or a lost connection would.
      await db.execute(sql.raw("create function refuse_record() returns trigger language plpgsql as $$ begin raise exception 'record refused'; end $$"));
      await db.execute(
        sql.raw(`create trigger refuse_record before insert on requests for each row when (new.id = '${requestId}') execute function refuse_record()`),
      );
      try {
        await expect(settle(billing, requestId, 2)).rejects.toThrow();
        expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 100, heldCents: 3, usageEntries: [] });
        expect(await holdOf(db, requestId)).toMatchObject({ status: "active" });
      } finally {
        await db.execute(sql.raw("drop trigger refuse_record on requests"));
        await db.execute(sql.raw("drop function refuse_record()"));
      }
      expect(await settle(billing, requestId, 2)).toEqual({ chargedCents: 2, settledNow: true, endedBySweeper: false });
      expect(await requestRow(db, requestId)).toMatchObject({ costCents: 2 });
    });

    it("settles idempotently: a second settle charges nothing more and reports the first charge", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId });

      const first = await settle(billing, requestId, 3);
      const second = await settle(billing, requestId, 3);
      const different = await settle(billing, requestId, 9);

      expect([first, second, different]).toEqual([
        { chargedCents: 3, settledNow: true, endedBySweeper: false },
        { chargedCents: 3, settledNow: false, endedBySweeper: false },
        { chargedCents: 3, settledNow: false, endedBySweeper: false },
      ]);
      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 97, heldCents: 0, ledgerSumCents: 97 });
      expect(money.usageEntries).toHaveLength(1);
    });

    it("releases without a charge for a cost of 0, records it, and a later settle charges nothing", async () => {
      const db = getDb();
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const requestId = newId.request();
      await reserve(billing, account.id, { requestId });

      const failed = { status: "failed", httpStatus: 503, errorCode: "upstream_unavailable", inputTokens: 0, outputTokens: 0 } as const;
      expect(await billing.settleHold({ requestId, costCents: 0, ending: failed })).toEqual({ chargedCents: 0, settledNow: true, endedBySweeper: false });
      expect(await settle(billing, requestId, 5)).toEqual({ chargedCents: 0, settledNow: false, endedBySweeper: false });

      expect(await holdOf(db, requestId)).toMatchObject({ status: "released" });
      expect(await requestRow(db, requestId)).toMatchObject({ status: "failed", httpStatus: 503, costCents: 0 });
      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 100, heldCents: 0, ledgerSumCents: 100, usageEntries: [] });
      expect(await rejectionOf(settle(billing, "req_unknown", 1))).toMatchObject({ code: "not_found" });
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
      expect(await settle(billing, a, 8)).toMatchObject({ chargedCents: 5 });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 5, heldCents: 5 });
      // b's hold is intact: its own cost is covered in full; the overage finds nothing left.
      expect(await settle(billing, b, 7)).toMatchObject({ chargedCents: 5 });
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 0, heldCents: 0, ledgerSumCents: 0 });
      expect(await requestRow(db, b)).toMatchObject({ costCents: 5 });
    });

    it("checkpoints write delivered usage onto active holds only, and push their expiry forward", async () => {
      const db = getDb();
      const { billing, clock } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 100 });
      const [running, closed] = [newId.request(), newId.request()];
      for (const requestId of [running, closed]) await reserve(billing, account.id, { requestId });
      await settle(billing, closed, 1);
      clock.advance(60_000);

      await billing.checkpoint([
        { requestId: running, inputTokens: 1_000, outputTokens: 700, costCents: 1 },
        { requestId: closed, inputTokens: 1_000, outputTokens: 900, costCents: 2 },
      ]);
      expect(await holdOf(db, running)).toMatchObject({
        deliveredInputTokens: 1_000,
        deliveredOutputTokens: 700,
        deliveredCostCents: 1,
        checkpointedAt: clock.now(),
        expiresAt: new Date(clock.now().getTime() + HOLD_TTL_MS),
      });
      expect(await holdOf(db, closed)).toMatchObject({ status: "settled", deliveredCostCents: 0 });
      await billing.checkpoint([]);
      await settle(billing, running, 1);
    });

    it("the sweeper bills an abandoned hold's last checkpoint once, records it interrupted, and a late settle adds nothing", async () => {
      const db = getDb();
      // Sweeps see every hold in the database: a test that sweeps runs in an
      // epoch of its own, before the default 2026 of the other tests' clocks,
      // and leaves no active hold behind.
      const { billing, clock } = createMoneyServices(db, new Date("2001-01-01T00:00:00Z"));
      const account = await createTestAccount(db, { balanceCents: 20 });
      const [streamed, silent, late] = [newId.request(), newId.request(), newId.request()];
      for (const requestId of [streamed, silent, late]) await reserve(billing, account.id, { requestId });
      await billing.checkpoint([
        { requestId: streamed, inputTokens: 1_000, outputTokens: 1_500, costCents: 2 },
        { requestId: late, inputTokens: 1_000, outputTokens: 500, costCents: 1 },
      ]);
      clock.advance(HOLD_TTL_MS / 2);
      const fresh = newId.request();
      await reserve(billing, account.id, { requestId: fresh });
      expect(await moneyState(db, account.id)).toMatchObject({ heldCents: 12 });

      expect(await billing.settleAbandonedHolds()).toBe(0); // nothing has expired yet
      clock.advance(HOLD_TTL_MS / 2 + 1);
      expect(await billing.settleAbandonedHolds()).toBe(3);
      expect(await billing.settleAbandonedHolds()).toBe(0);

      expect(await holdOf(db, streamed)).toMatchObject({ status: "expired", closedAt: clock.now() });
      expect(await holdOf(db, fresh)).toMatchObject({ status: "active" });
      expect(await requestRow(db, streamed)).toMatchObject({ status: "interrupted", httpStatus: 200, costCents: 2, outputTokens: 1_500 });
      expect(await requestRow(db, silent)).toMatchObject({ status: "interrupted", httpStatus: 503, costCents: 0, outputTokens: 0 });
      // 20 − 2 − 1 charged from the checkpoints; fresh still holds 3.
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 17, heldCents: 3, ledgerSumCents: 17 });

      // The request that outlived its hold reports the sweeper's charge and adds nothing, and that the sweeper ended it.
      expect(await settle(billing, late, 2)).toEqual({ chargedCents: 1, settledNow: false, endedBySweeper: true });
      const money = await moneyState(db, account.id);
      expect(money).toMatchObject({ balanceCents: 17, heldCents: 3 });
      expect(money.usageEntries).toHaveLength(2);
      await settle(billing, fresh, 0); // leave nothing for another test's sweep
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
        await settle(billing, requestId, i % 3 === 0 ? 0 : i);
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
