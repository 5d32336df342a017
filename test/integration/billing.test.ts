import { randomInt } from "node:crypto";
import { eq, inArray, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";
import { accounts, holds, requests } from "../../src/domain/schema/index.js";
import { eventually } from "../support/eventually.js";
import { createTestAccount } from "../support/factories.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { moneyState, requestRow } from "../support/queries.js";
import { holdBatchScenarios, reserveCents } from "./hold-batches.js";
import {
  activeHoldsCents,
  billingScenarios,
  createMoneyServices,
  HOLD_TTL_MS,
  holdOf,
  INSUFFICIENT,
  reserve,
  settle,
} from "./ledger-billing-scenarios.js";

let database: TestDatabase;
beforeAll(async () => {
  // A pool of 20, so the concurrent flows below really run on separate connections.
  database = await createTestDatabase({ maxConnections: 20 });
});
afterAll(() => database?.drop());

const jitter = () => new Promise((resolve) => setTimeout(resolve, Math.random() * 5));

describe("on PostgreSQL", () => {
  billingScenarios(() => database.db);
  holdBatchScenarios(() => database.db);

  describe("under concurrency (SPEC 5: balance never negative)", () => {
    it("50 concurrent reserve → settle flows on 7 cents: exactly the money's worth succeed", async () => {
      const { db } = database;
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 7 });

      // Each asks for 2,000 output tokens: 2 cents worst case, 100 cents in sum.
      // Each then costs exactly what it held, so available money only ever
      // shrinks: the holds must come out as 2 + 2 + 2 + 1, whatever the order.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 50 }, async () => {
          const requestId = newId.request();
          const hold = await reserve(billing, account.id, { requestId, inputTokens: 0, requestedMaxTokens: 2_000 });
          await jitter();
          const { chargedCents } = await settle(billing, requestId, hold.amountCents);
          return { requestId, held: hold.amountCents, chargedCents };
        }),
      );

      const refused = outcomes.filter((o) => o.status === "rejected");
      const succeeded = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
      for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject(INSUFFICIENT);
      const money = await moneyState(db, account.id);
      expect(money.balanceCents).toBeGreaterThanOrEqual(0);
      expect(money.balanceCents).toBe(money.ledgerSumCents);
      expect(money.heldCents).toBe(0);
      expect(succeeded.map((s) => s.held).sort()).toEqual([1, 2, 2, 2]);
      expect(succeeded.every((s) => s.chargedCents === s.held)).toBe(true);
      expect(money.usageEntries).toHaveLength(succeeded.length);
      expect(money.balanceCents).toBe(0);
      expect(refused).toHaveLength(46);
    });

    it("60 concurrent flows that overrun their holds or fail: the charges add up and nothing overdraws", async () => {
      const { db } = database;
      const { billing } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 7 });

      const outcomes = await Promise.allSettled(
        Array.from({ length: 60 }, async (_, i) => {
          const requestId = newId.request();
          // 1,000 in + 3,000 out: 3 cents worst case.
          const hold = await reserve(billing, account.id, { requestId });
          await jitter();
          if (i % 3 === 0) {
            await settle(billing, requestId, 0);
            return { requestId, costCents: 0, chargedCents: 0 };
          }
          // The upstream reports more tokens than we estimated: 2 cents over the hold.
          const costCents = hold.amountCents + 2;
          const { chargedCents } = await settle(billing, requestId, costCents);
          return { requestId, costCents, chargedCents };
        }),
      );

      const refused = outcomes.filter((o) => o.status === "rejected");
      const finished = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
      for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject(INSUFFICIENT);
      const money = await moneyState(db, account.id);
      expect(money.balanceCents).toBeGreaterThanOrEqual(0);
      expect(money.balanceCents).toBe(money.ledgerSumCents);
      expect(money.heldCents).toBe(0);
      expect(finished.length).toBeGreaterThan(0);
      for (const f of finished) expect(f.chargedCents).toBeLessThanOrEqual(f.costCents);
      const charged = finished.filter((f) => f.chargedCents > 0);
      expect(money.usageEntries).toHaveLength(charged.length);
      expect(new Set(money.usageEntries.map((e) => e.requestId))).toEqual(new Set(charged.map((c) => c.requestId)));
      expect(7 - money.balanceCents).toBe(charged.reduce((sum, c) => sum + c.chargedCents, 0));
    });

    it("several sweepers at once end each abandoned hold exactly once, while new holds come in", async () => {
      const { db } = database;
      // Its own epoch, so these sweeps touch only this test's holds (see the sweeper scenario).
      const { billing, clock } = createMoneyServices(db, new Date("2002-01-01T00:00:00Z"));
      const owners = await Promise.all([1, 2, 3].map(() => createTestAccount(db, { balanceCents: 100 })));
      const expiring: string[] = [];
      for (const owner of owners) {
        for (let i = 0; i < 10; i++) {
          const requestId = newId.request();
          expiring.push(requestId);
          await reserve(billing, owner.id, { requestId, inputTokens: 0, requestedMaxTokens: 2_000 });
        }
      }
      // Half of them had delivered 1 cent's worth before their process died.
      const delivered = expiring.filter((_, i) => i % 2 === 0);
      await billing.checkpoint(delivered.map((requestId) => ({ requestId, inputTokens: 0, outputTokens: 1_000, costCents: 1 })));
      clock.advance(HOLD_TTL_MS + 1);

      const instances = Array.from({ length: 4 }, () => createMoneyServices(db, clock.now()).billing);
      const [released, incoming] = await Promise.all([
        Promise.all(instances.map((b) => b.settleAbandonedHolds())),
        Promise.all(
          owners.flatMap((owner) =>
            Array.from({ length: 5 }, async () => {
              const requestId = newId.request();
              await reserve(billing, owner.id, { requestId, inputTokens: 0, requestedMaxTokens: 2_000 });
              return { requestId };
            }),
          ),
        ),
      ]);

      expect(released.reduce((a, b) => a + b, 0)).toBe(30);
      for (const requestId of expiring) {
        expect((await holdOf(db, requestId))?.status).toBe("expired");
        expect(await requestRow(db, requestId)).toMatchObject({ status: "interrupted", costCents: delivered.includes(requestId) ? 1 : 0 });
      }
      for (const owner of owners) {
        const money = await moneyState(db, owner.id);
        expect(money).toMatchObject({ balanceCents: 95, heldCents: 10, ledgerSumCents: 95 });
        expect(money.usageEntries).toHaveLength(5);
        expect(money.heldCents).toBe(await activeHoldsCents(db, owner.id));
      }
      await Promise.all(incoming.map((hold) => settle(billing, hold.requestId, 0)));
    });

    it("100 concurrent flows, some costing more than they held: settles batch, nothing overdraws, every hold's own cost is charged", async () => {
      const { db } = database;
      const { billing, clock } = createMoneyServices(db);
      const account = await createTestAccount(db, { balanceCents: 60 });

      const outcomes = await Promise.allSettled(
        Array.from({ length: 100 }, async () => {
          const requestId = await reserveCents(billing, account.id, randomInt(1, 5));
          const held = (await holdOf(db, requestId))!.amountCents;
          await jitter();
          // Up to 2 cents above the hold: the upstream counted more than we estimated.
          const costCents = randomInt(0, held + 3);
          clock.advance(1); // each settle its own instant: a batch's records share its latest
          const { chargedCents } = await settle(billing, requestId, costCents);
          return { requestId, held, costCents, chargedCents };
        }),
      );

      const finished = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
      for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toMatchObject(INSUFFICIENT);
      const money = await moneyState(db, account.id);
      expect(money.balanceCents).toBeGreaterThanOrEqual(0);
      expect(money.balanceCents).toBe(money.ledgerSumCents);
      expect(money.heldCents).toBe(0);
      expect(await activeHoldsCents(db, account.id)).toBe(0);
      const records = await db.select().from(requests).where(eq(requests.accountId, account.id));
      expect(records.map((r) => r.id).sort()).toEqual(finished.map((f) => f.requestId).sort());
      const costOf = new Map(records.map((r) => [r.id, r.costCents]));
      expect(finished.filter((f) => costOf.get(f.requestId) !== f.chargedCents)).toEqual([]);
      expect(60 - money.balanceCents).toBe(finished.reduce((sum, f) => sum + f.chargedCents, 0));
      expect(money.usageEntries).toHaveLength(finished.filter((f) => f.chargedCents > 0).length);
      // Settles did share statements (fewer instants than records)...
      expect(new Set(records.map((r) => r.createdAt.getTime())).size).toBeLessThan(records.length);
      // ...and a hold's money was its own: a cost it covered was charged in full, whoever overran beside it.
      expect(finished.filter((f) => f.chargedCents > f.costCents)).toEqual([]);
      expect(finished.filter((f) => f.costCents <= f.held && f.chargedCents !== f.costCents)).toEqual([]);
    });

    it("checkpoints in a loop beside settle batches of two accounts: no deadlock, and no checkpoint of a hold still active is lost", async () => {
      const { db } = database;
      const { billing } = createMoneyServices(db);
      const [a, b] = await Promise.all([createTestAccount(db, { balanceCents: 1_000 }), createTestAccount(db, { balanceCents: 1_000 })]);
      const ids = (n: number) =>
        Promise.all(Array.from({ length: n }, (_, i) => reserveCents(billing, (i % 2 === 0 ? a : b)!.id, 3)));
      // Interleaved a, b, a, b…: every batch and every checkpoint spans both accounts.
      const [settling, staying] = await Promise.all([ids(60), ids(8)]);

      let done = false;
      /** Checkpoints the settling holds (in `order`) and its own round after round; its own must carry each round at once. */
      const checkpointLoop = async (order: string[], own: string[]) => {
        let round = 0;
        while (!done) {
          round++;
          await billing.checkpoint([...order, ...own].map((requestId) => ({ requestId, inputTokens: round, outputTokens: round, costCents: round })));
          const seen = await db.select({ cost: holds.deliveredCostCents }).from(holds).where(inArray(holds.requestId, own));
          expect(seen.map((h) => h.cost)).toEqual(own.map(() => round));
        }
        return round;
      };
      const loops = [
        checkpointLoop(settling, staying.slice(0, 4)),
        checkpointLoop([...settling].reverse(), staying.slice(4)),
      ];
      // Spread over some 30 ms, so the loops run many rounds beside them.
      await Promise.all(
        settling.map(async (requestId, i) => {
          await new Promise((resolve) => setTimeout(resolve, i % 30));
          return settle(billing, requestId, 2);
        }),
      );
      done = true;
      const rounds = await Promise.all(loops);

      expect(Math.min(...rounds)).toBeGreaterThan(1);
      for (const account of [a!, b!]) {
        expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 1_000 - 30 * 2, heldCents: 4 * 3, ledgerSumCents: 1_000 - 30 * 2 });
        expect(await activeHoldsCents(db, account.id)).toBe(4 * 3);
      }
      const closed = await db.select({ status: holds.status }).from(holds).where(inArray(holds.requestId, settling));
      expect(closed.map((h) => h.status)).toEqual(settling.map(() => "settled"));
      await Promise.all(staying.map((requestId) => settle(billing, requestId, 0)));
    });

    it("a settle that waited for the account while another closed the same hold reports that first charge", async () => {
      const { db } = database;
      const account = await createTestAccount(db, { balanceCents: 100 });
      // Two instances: their settles do not share a batch.
      const [first, second] = [createMoneyServices(db).billing, createMoneyServices(db).billing];
      const requestId = await reserveCents(first, account.id, 3);

      // A top-up holds the account's lock until both settles wait for it.
      let taken: () => void = () => {};
      let release: () => void = () => {};
      const locked = new Promise<void>((resolve) => (taken = resolve));
      const topUp = db.transaction(async (tx) => {
        await tx.select().from(accounts).where(eq(accounts.id, account.id)).for("update");
        taken();
        await new Promise<void>((resolve) => (release = resolve));
      });
      await locked;
      const settles = [settle(first, requestId, 2), settle(second, requestId, 2)];
      const waiting = async () =>
        ((await db.execute(sql`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`)) as unknown as Array<{ n: number }>)[0]!.n;
      expect(await eventually(waiting, (n) => n === 2)).toBe(2);
      release();
      await topUp;

      const answers = await Promise.all(settles);
      expect(answers.map((s) => s.chargedCents)).toEqual([2, 2]);
      expect(answers.map((s) => s.settledNow).sort()).toEqual([false, true]);
      expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 98, heldCents: 0, ledgerSumCents: 98 });
    });
  });
});
