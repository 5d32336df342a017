import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestAccount } from "../support/factories.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { moneyState } from "../support/queries.js";
import { createMoneyServices, INSUFFICIENT, ledgerScenarios } from "./ledger-billing-scenarios.js";

let database: TestDatabase;
beforeAll(async () => {
  // Enough connections that concurrent posts really contend for the account row.
  database = await createTestDatabase({ maxConnections: 20 });
});
afterAll(() => database?.drop());

describe("on PostgreSQL", () => {
  ledgerScenarios(() => database.db);

  it("lets exactly as many concurrent 1-cent debits through as there are cents", async () => {
    const { db } = database;
    const { ledger } = createMoneyServices(db);
    const account = await createTestAccount(db, { balanceCents: 20 });

    const outcomes = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        ledger.post(db, { accountId: account.id, kind: "usage", amountCents: -1, idempotencyKey: `debit-${i}` }),
      ),
    );

    const refused = outcomes.filter((o) => o.status === "rejected");
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject(INSUFFICIENT);
    expect(outcomes.length - refused.length).toBe(20);
    const money = await moneyState(db, account.id);
    expect(money).toMatchObject({ balanceCents: 0, ledgerSumCents: 0 });
    // Each entry's balance-after is one step of an unbroken chain from 20 down to 0.
    expect(money.usageEntries.map((e) => e.balanceAfterCents).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("creates one entry when the same key is posted concurrently", async () => {
    const { db } = database;
    const { ledger } = createMoneyServices(db);
    const account = await createTestAccount(db, { balanceCents: 0 });

    const topup = { accountId: account.id, kind: "topup" as const, amountCents: 1_000, idempotencyKey: "checkout:cs_1" };
    const results = await Promise.all(Array.from({ length: 30 }, () => ledger.post(db, topup)));

    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.entry.id)).size).toBe(1);
    expect(await moneyState(db, account.id)).toMatchObject({ balanceCents: 1_000, ledgerSumCents: 1_000 });
  });
});
