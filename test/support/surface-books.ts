import postgres from "postgres";
import { expect } from "vitest";
import { accountBooks } from "../faults/support/account-books.js";
import type { TestPlatform } from "./platform.js";
import { moneyState, requestRow } from "./queries.js";

// The money checks every metered surface's tests end with, read straight from
// the tables: what one request was billed, or that a refusal billed nothing.

export interface ExpectedBill {
  endpoint: string;
  model: string;
  costCents: number;
  inputTokens?: number;
  outputTokens?: number;
}

export interface SurfaceBooks {
  /** A connection of the test's own to the platform's database, for snapshot reads. */
  sql: postgres.Sql;
  /**
   * The account has exactly one billed request, as `expected`: a succeeded
   * record, one ledger debit of exactly its cost, no hold left active, and
   * balance = Σ ledger = opening − cost. Refusals it also met billed nothing.
   * Resolves with the request record.
   */
  expectBilledOnce(accountId: string, openingCents: number, expected: ExpectedBill): ReturnType<typeof requestRow>;
  /** Nothing debited: balance untouched, no usage entry, no cost recorded, no hold left active. */
  expectNothingBilled(accountId: string, openingCents: number): Promise<void>;
  close(): Promise<void>;
}

export function surfaceBooks(t: TestPlatform): SurfaceBooks {
  const sql = postgres(t.database.url, { max: 2, onnotice: () => {} });
  const db = () => t.platform.services.db;

  async function expectRefusalsUnbilled(accountId: string, except?: string) {
    for (const trail of (await accountBooks(sql, accountId)).requests) {
      expect(trail.hold?.status).not.toBe("active");
      if (trail.requestId === except) continue;
      expect(trail.chargedCents).toBe(0);
      expect(trail.record?.costCents ?? 0).toBe(0);
    }
  }

  return {
    sql,
    async expectBilledOnce(accountId, openingCents, expected) {
      const money = await moneyState(db(), accountId);
      expect(money.usageEntries).toEqual([expect.objectContaining({ amountCents: -expected.costCents })]);
      const requestId = money.usageEntries[0]!.requestId!;
      const closing = openingCents - expected.costCents;
      expect(money).toMatchObject({ balanceCents: closing, heldCents: 0, ledgerSumCents: closing });
      const row = await requestRow(db(), requestId);
      expect(row).toMatchObject({ status: "succeeded", httpStatus: 200, ...expected });
      await expectRefusalsUnbilled(accountId, requestId);
      return row;
    },
    async expectNothingBilled(accountId, openingCents) {
      expect(await moneyState(db(), accountId)).toMatchObject({
        balanceCents: openingCents,
        heldCents: 0,
        ledgerSumCents: openingCents,
        usageEntries: [],
      });
      await expectRefusalsUnbilled(accountId);
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
