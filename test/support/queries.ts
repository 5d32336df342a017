import { eq, sql } from "drizzle-orm";
import type { Db } from "../../src/domain/db.js";
import { accounts, conversations, endUsers, ledgerEntries, requests } from "../../src/domain/schema/index.js";

/** Reads the money state of an account straight from the database, for invariant checks. */
export async function moneyState(db: Db, accountId: string) {
  const [account] = await db.select().from(accounts).where(eq(accounts.id, accountId));
  const [sum] = await db
    .select({ total: sql<string>`coalesce(sum(${ledgerEntries.amountCents}), 0)` })
    .from(ledgerEntries)
    .where(eq(ledgerEntries.accountId, accountId));
  const usage = await db.select().from(ledgerEntries).where(eq(ledgerEntries.accountId, accountId));
  return {
    balanceCents: account!.balanceCents,
    heldCents: account!.heldCents,
    ledgerSumCents: Number(sum!.total),
    usageEntries: usage.filter((e) => e.kind === "usage"),
  };
}

export const requestRow = async (db: Db, requestId: string) =>
  (await db.select().from(requests).where(eq(requests.id, requestId)))[0];

export const endUsersOf = (db: Db, accountId: string) => db.select().from(endUsers).where(eq(endUsers.accountId, accountId));

export const conversationsOf = (db: Db, accountId: string) =>
  db.select().from(conversations).where(eq(conversations.accountId, accountId));
