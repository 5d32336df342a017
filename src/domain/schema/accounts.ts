import { sql } from "drizzle-orm";
import { check, jsonb, pgTable, text } from "drizzle-orm/pg-core";
import { cents, timestampTz } from "./columns.js";

export type AccountStatus = "active" | "suspended";

/** Per-account overrides of the SPEC 6 limits; absent fields use the platform defaults. */
export interface AccountLimits {
  requestsPerMinute?: number;
  concurrentStreams?: number;
  keyCreationsPerHour?: number;
  maxActiveKeys?: number;
}

export const accounts = pgTable(
  "accounts",
  {
    id: text("id").primaryKey(),
    email: text("email").notNull().unique(),
    displayName: text("display_name").notNull(),
    status: text("status").$type<AccountStatus>().notNull().default("active"),
    plan: text("plan").notNull().default("payg"),
    // Cached sum of the ledger; changed only together with a ledger entry.
    balanceCents: cents("balance_cents").notNull().default(0),
    // Sum of the account's active holds.
    heldCents: cents("held_cents").notNull().default(0),
    limits: jsonb("limits").$type<AccountLimits>().notNull().default({}),
    passwordHash: text("password_hash"),
    /** A one-time sign-up token set through ops, stored hashed: whoever holds it may claim the account (set its password). */
    claimTokenHash: text("claim_token_hash").unique(),
    claimTokenExpiresAt: timestampTz("claim_token_expires_at"),
    createdAt: timestampTz("created_at").notNull().defaultNow(),
    updatedAt: timestampTz("updated_at").notNull().defaultNow(),
  },
  (t) => [
    check("accounts_held_non_negative", sql`${t.heldCents} >= 0`),
  ],
);

export type Account = typeof accounts.$inferSelect;

/** The owning account of a row in another aggregate. */
export const accountRef = () =>
  text("account_id")
    .notNull()
    .references(() => accounts.id);
