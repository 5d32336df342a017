import { index, pgTable, text, uniqueIndex } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { cents, timestampTz } from "./columns.js";

export type LedgerEntryKind = "topup" | "usage" | "refund" | "grant" | "adjustment";

/** Append-only: rows are inserted, never updated or deleted (SPEC 5). */
export const ledgerEntries = pgTable(
  "ledger_entries",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    kind: text("kind").$type<LedgerEntryKind>().notNull(),
    // Signed: credits positive, debits negative.
    amountCents: cents("amount_cents").notNull(),
    balanceAfterCents: cents("balance_after_cents").notNull(),
    idempotencyKey: text("idempotency_key").notNull(),
    requestId: text("request_id"),
    memo: text("memo"),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("ledger_entries_idempotency_idx").on(t.accountId, t.idempotencyKey),
    index("ledger_entries_account_created_idx").on(t.accountId, t.createdAt),
  ],
);

export type LedgerEntry = typeof ledgerEntries.$inferSelect;

export type HoldStatus = "active" | "settled" | "released" | "expired";

/** A reservation of a request's worst-case cost, taken before the upstream call. */
export const holds = pgTable(
  "holds",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    requestId: text("request_id").notNull().unique(),
    amountCents: cents("amount_cents").notNull(),
    status: text("status").$type<HoldStatus>().notNull().default("active"),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
    expiresAt: timestampTz("expires_at").notNull(),
    closedAt: timestampTz("closed_at"),
  },
  (t) => [index("holds_active_expiry_idx").on(t.status, t.expiresAt)],
);

export type Hold = typeof holds.$inferSelect;
