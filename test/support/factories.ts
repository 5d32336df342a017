import { eq } from "drizzle-orm";
import { systemClock } from "../../src/domain/clock.js";
import type { Db } from "../../src/domain/db.js";
import { newId, randomBase62 } from "../../src/domain/ids.js";
import { createLedger } from "../../src/domain/ledger.js";
import { type Account, type AccountStatus, accounts } from "../../src/domain/schema/index.js";

// One-line builders of test data. Each makes its own unique rows, so no test
// depends on another's data.

const ledger = createLedger({ clock: systemClock });

/** An account whose balance is credited through the ledger (a "grant"), so balance = ledger sum from the start. */
export async function createTestAccount(
  db: Db,
  { balanceCents = 500, status = "active", email }: { balanceCents?: number; status?: AccountStatus; email?: string } = {},
): Promise<Account> {
  const id = newId.account();
  const address = email ?? `test-${randomBase62(12).toLowerCase()}@example.com`;
  await db.insert(accounts).values({ id, email: address, displayName: address, status });
  if (balanceCents > 0) {
    await ledger.post(db, { accountId: id, kind: "grant", amountCents: balanceCents, idempotencyKey: "test-opening-balance" });
  }
  const [account] = await db.select().from(accounts).where(eq(accounts.id, id));
  return account!;
}
