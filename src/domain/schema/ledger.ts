import { sql } from "drizzle-orm";
import { boolean, check, date, index, jsonb, pgTable, text, uniqueIndex } from "drizzle-orm/pg-core";
import { accountRef } from "./accounts.js";
import { cents, timestampTz, tokens } from "./columns.js";

export type LedgerEntryKind = "topup" | "usage" | "refund" | "grant" | "adjustment" | "boost";

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
    // SPEC 5, enforced by the database as the last line: a debit never takes a balance below zero,
    // except a refund Stripe reports (money that has already left), after which new requests get 402.
    check(
      "ledger_entries_debit_keeps_balance",
      sql`${t.amountCents} >= 0 or ${t.balanceAfterCents} >= 0 or (${t.kind} = 'refund' and ${t.idempotencyKey} like 'stripe-refund:%')`,
    ),
  ],
);

export type LedgerEntry = typeof ledgerEntries.$inferSelect;

export type HoldStatus = "active" | "settled" | "released" | "expired";

/** SPEC 3 identity as the request sent it, kept on the hold until the request is recorded. */
export interface HeldIdentity {
  userId?: string;
  userName?: string;
  sessionId?: string;
}

/**
 * A reservation of a request's worst-case cost, taken before the upstream call.
 * It is also the request's durable pending charge: it carries what its request
 * record needs, and the usage delivered so far (the checkpoint), so a sweeper
 * can bill and record a request whose process died (SPEC 5).
 */
export const holds = pgTable(
  "holds",
  {
    id: text("id").primaryKey(),
    accountId: accountRef(),
    requestId: text("request_id").notNull().unique(),
    amountCents: cents("amount_cents").notNull(),
    status: text("status").$type<HoldStatus>().notNull().default("active"),
    // The defaults below only fill holds written before these columns existed (all long closed).
    apiKeyId: text("api_key_id"),
    endpoint: text("endpoint").notNull().default("/v1/chat/completions"),
    model: text("model").notNull().default(""),
    stream: boolean("stream").notNull().default(false),
    identity: jsonb("identity").$type<HeldIdentity>().notNull().default({}),
    deliveredInputTokens: tokens("delivered_input_tokens").notNull().default(0),
    deliveredOutputTokens: tokens("delivered_output_tokens").notNull().default(0),
    deliveredCostCents: cents("delivered_cost_cents").notNull().default(0),
    checkpointedAt: timestampTz("checkpointed_at"),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
    /** Pushed forward by every checkpoint: a hold expires only when its process stopped checkpointing. */
    expiresAt: timestampTz("expires_at").notNull(),
    closedAt: timestampTz("closed_at"),
    /** Set when the plan covers the request (SPEC 10): the week whose allowance it took a chat of. Such a hold holds 0 cents. */
    quotaWeek: date("quota_week", { mode: "string" }),
  },
  (t) => [index("holds_active_expiry_idx").on(t.status, t.expiresAt)],
);

export type Hold = typeof holds.$inferSelect;
