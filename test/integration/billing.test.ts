import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";
import { createTestAccount } from "../support/factories.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { moneyState, requestRow } from "../support/queries.js";
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
  });
});
