import { eq } from "drizzle-orm";
import type { Db } from "../../src/domain/db.js";
import { accounts, conversations, endUsers, ledgerEntries, requests } from "../../src/domain/schema/index.js";

/** Reads the money state of an account in one snapshot, for invariant checks. */
export function moneyState(db: Db, accountId: string) {
  return db.transaction(
    async (tx) => {
      const [account] = await tx.select().from(accounts).where(eq(accounts.id, accountId));
      const entries = await tx.select().from(ledgerEntries).where(eq(ledgerEntries.accountId, accountId));
      return {
        balanceCents: account!.balanceCents,
        heldCents: account!.heldCents,
        ledgerSumCents: entries.reduce((sum, e) => sum + e.amountCents, 0),
        usageEntries: entries.filter((e) => e.kind === "usage"),
      };
    },
    { isolationLevel: "repeatable read" },
  );
}

export const requestRow = async (db: Db, requestId: string) =>
  (await db.select().from(requests).where(eq(requests.id, requestId)))[0];

export const endUsersOf = (db: Db, accountId: string) => db.select().from(endUsers).where(eq(endUsers.accountId, accountId));

export const conversationsOf = (db: Db, accountId: string) =>
  db.select().from(conversations).where(eq(conversations.accountId, accountId));
