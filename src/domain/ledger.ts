import { and, desc, eq, is, lt, or, sql } from "drizzle-orm";
import { PgTransaction } from "drizzle-orm/pg-core";
import type { Clock } from "./clock.js";
import type { DbOrTx, Tx } from "./db.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import { equalsIfGiven } from "./list-filters.js";
import { accounts, type LedgerEntry, type LedgerEntryKind, ledgerEntries } from "./schema/index.js";

// SPEC 5: the append-only ledger. It and closing a hold (hold-settlement.ts)
// are the only writers of accounts.balance_cents, and each changes it in the
// same transaction as the entry it inserts, so the balance always equals the
// sum of the account's entries.

export interface PostEntryInput {
  accountId: string;
  kind: LedgerEntryKind;
  /** Signed cents: credits positive, debits negative. Never 0. */
  amountCents: number;
  /** Unique per account; posting the same key again returns the first entry. */
  idempotencyKey: string;
  requestId?: string | null;
  memo?: string | null;
}

export interface PostResult {
  entry: LedgerEntry;
  /** false when the idempotency key had already been posted: nothing changed. */
  created: boolean;
}

export interface LedgerPageRequest {
  limit: number;
  /** The id of the last entry of the previous page. */
  before?: string | undefined;
  /** Only entries of this kind. */
  kind?: LedgerEntryKind | undefined;
}

export interface LedgerMismatch {
  accountId: string;
  balanceCents: number;
  ledgerSumCents: number;
}

export const INSUFFICIENT_BALANCE_MESSAGE = "Balance too low. Top up at sentx.ai.";

/**
 * Runs `fn` in the caller's transaction when given one, else in a new one.
 * Not a nested `transaction()` call: that would cost a SAVEPOINT and a RELEASE
 * round trip on the hot path (settling a hold) for no benefit, since `post`
 * throws before it writes anything.
 */
function inTransaction<T>(dbOrTx: DbOrTx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return is(dbOrTx, PgTransaction) ? fn(dbOrTx as Tx) : dbOrTx.transaction(fn);
}

/** The account's entry under this idempotency key, if one was posted. */
export async function findByIdempotencyKey(db: DbOrTx, accountId: string, idempotencyKey: string): Promise<LedgerEntry | null> {
  const [entry] = await db
    .select()
    .from(ledgerEntries)
    .where(and(eq(ledgerEntries.accountId, accountId), eq(ledgerEntries.idempotencyKey, idempotencyKey)));
  return entry ?? null;
}

export function createLedger({ clock }: { clock: Clock }) {
  /**
   * Appends one entry and moves the balance by its amount, exactly once per
   * (account, idempotency key). Refuses to take the balance below zero.
   */
  const post = (dbOrTx: DbOrTx, input: PostEntryInput): Promise<PostResult> => append(dbOrTx, input, { mayOverdraw: false });

  /**
   * The one debit that may take the balance below zero: money Stripe gave
   * back to the payer was already spent here. Stripe reports a charge's
   * refunds as a running total, so the key names the charge and that total:
   * each refund posts once, however often its event is delivered. The
   * `stripe-refund:` prefix is what the database's check lets through.
   */
  const postStripeRefund = (
    dbOrTx: DbOrTx,
    input: { accountId: string; chargeId: string; refundedTotalCents: number; amountCents: number; memo: string },
  ): Promise<PostResult> =>
    append(
      dbOrTx,
      {
        accountId: input.accountId,
        kind: "refund",
        amountCents: -input.amountCents,
        idempotencyKey: `stripe-refund:${input.chargeId}:${input.refundedTotalCents}`,
        memo: input.memo,
      },
      { mayOverdraw: true },
    );

  async function append(dbOrTx: DbOrTx, input: PostEntryInput, { mayOverdraw }: { mayOverdraw: boolean }): Promise<PostResult> {
    // Decision: a 0-cent entry is refused. It moves no money, would only add
    // noise to an append-only history, and would burn its idempotency key.
    if (!Number.isSafeInteger(input.amountCents) || input.amountCents === 0) {
      throw new DomainError("invalid_request_error", "A ledger entry must move a whole, non-zero number of cents.", "amountCents");
    }
    return inTransaction(dbOrTx, async (tx) => {
      // The row lock serialises every balance change of this account, so the
      // balance read here is the one the new entry follows.
      const [account] = await tx
        .select({ balanceCents: accounts.balanceCents })
        .from(accounts)
        .where(eq(accounts.id, input.accountId))
        .for("update");
      if (!account) throw new DomainError("not_found", `No account ${input.accountId}.`);

      const balanceAfterCents = account.balanceCents + input.amountCents;
      if (balanceAfterCents < 0 && !mayOverdraw) {
        // A retried debit that was already applied is a success, not an overdraft.
        const existing = await findByIdempotencyKey(tx, input.accountId, input.idempotencyKey);
        if (existing) return { entry: existing, created: false };
        throw new DomainError("insufficient_balance", INSUFFICIENT_BALANCE_MESSAGE);
      }

      // The unique index decides duplicates (not a read before the insert), so
      // this stays exact even for a writer that did not take the row lock.
      const [entry] = await tx
        .insert(ledgerEntries)
        .values({
          id: newId.ledgerEntry(),
          accountId: input.accountId,
          kind: input.kind,
          amountCents: input.amountCents,
          balanceAfterCents,
          idempotencyKey: input.idempotencyKey,
          requestId: input.requestId ?? null,
          memo: input.memo ?? null,
          createdAt: clock.now(),
        })
        .onConflictDoNothing({ target: [ledgerEntries.accountId, ledgerEntries.idempotencyKey] })
        .returning();
      if (!entry) {
        const existing = await findByIdempotencyKey(tx, input.accountId, input.idempotencyKey);
        return { entry: existing!, created: false };
      }

      await tx
        .update(accounts)
        .set({ balanceCents: balanceAfterCents, updatedAt: clock.now() })
        .where(eq(accounts.id, input.accountId));
      return { entry, created: true };
    });
  }

  /**
   * Newest first. `before` is the id of the last entry of the previous page.
   * Order is (created_at, id): entries posted in the same millisecond come in
   * id order, which is stable but not necessarily the order they were posted.
   */
  async function list(db: DbOrTx, accountId: string, page: LedgerPageRequest): Promise<LedgerEntry[]> {
    let after = undefined;
    if (page.before) {
      const [cursor] = await db
        .select({ id: ledgerEntries.id, createdAt: ledgerEntries.createdAt })
        .from(ledgerEntries)
        .where(and(eq(ledgerEntries.id, page.before), eq(ledgerEntries.accountId, accountId)));
      if (!cursor) throw new DomainError("not_found", `No ledger entry ${page.before} on account ${accountId}.`, "before");
      after = or(
        lt(ledgerEntries.createdAt, cursor.createdAt),
        and(eq(ledgerEntries.createdAt, cursor.createdAt), lt(ledgerEntries.id, cursor.id)),
      );
    }
    return db
      .select()
      .from(ledgerEntries)
      .where(and(eq(ledgerEntries.accountId, accountId), equalsIfGiven(ledgerEntries.kind, page.kind), after))
      .orderBy(desc(ledgerEntries.createdAt), desc(ledgerEntries.id))
      .limit(page.limit);
  }

  /**
   * SPEC 5's ops check: every account (or the one given) whose cached balance
   * differs from the sum of its entries. One statement, so it reads one
   * snapshot and a concurrent post (entry + balance commit together) never
   * shows as a mismatch.
   */
  async function verify(db: DbOrTx, accountId?: string): Promise<LedgerMismatch[]> {
    if (accountId !== undefined) {
      const [account] = await db.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, accountId));
      if (!account) throw new DomainError("not_found", `No account ${accountId}.`, "accountId");
    }
    const ledgerSum = sql<string>`coalesce(sum(${ledgerEntries.amountCents}), 0)`;
    const rows = await db
      .select({ accountId: accounts.id, balanceCents: accounts.balanceCents, ledgerSumCents: ledgerSum })
      .from(accounts)
      .leftJoin(ledgerEntries, eq(ledgerEntries.accountId, accounts.id))
      .where(equalsIfGiven(accounts.id, accountId))
      .groupBy(accounts.id)
      .having(sql`${accounts.balanceCents} <> ${ledgerSum}`)
      .orderBy(accounts.id);
    // sum() of bigint is numeric, which the drivers return as text; cents fit a double exactly.
    return rows.map((r) => ({ accountId: r.accountId, balanceCents: r.balanceCents, ledgerSumCents: Number(r.ledgerSumCents) }));
  }

  return { post, postStripeRefund, list, verify };
}

export type Ledger = ReturnType<typeof createLedger>;
