import { eq } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import type { Ledger } from "./ledger.js";
import { type Account, type AccountLimits, type AccountStatus, accounts } from "./schema/index.js";

export interface CreateAccountInput {
  email: string;
  displayName?: string;
  plan?: string;
  initialCreditsCents?: number;
  limits?: AccountLimits;
}

const isUniqueViolation = (error: unknown): boolean =>
  (error as { code?: string })?.code === "23505" || (error as { cause?: { code?: string } })?.cause?.code === "23505";

export function createAccounts({ db, clock, ledger }: { db: Db; clock: Clock; ledger: Ledger }) {
  async function get(accountId: string): Promise<Account> {
    const [account] = await db.select().from(accounts).where(eq(accounts.id, accountId));
    if (!account) throw new DomainError("not_found", `No account ${accountId}.`);
    return account;
  }

  return {
    get,

    async findByEmail(email: string): Promise<Account | null> {
      const [account] = await db.select().from(accounts).where(eq(accounts.email, email.toLowerCase()));
      return account ?? null;
    },

    /** Creates the account and, in the same transaction, credits its opening balance through the ledger. */
    async create(input: CreateAccountInput): Promise<Account> {
      const id = newId.account();
      const email = input.email.toLowerCase();
      try {
        return await db.transaction(async (tx) => {
          const now = clock.now();
          await tx.insert(accounts).values({
            id,
            email,
            displayName: input.displayName ?? email,
            plan: input.plan ?? "payg",
            limits: input.limits ?? {},
            createdAt: now,
            updatedAt: now,
          });
          if (input.initialCreditsCents) {
            await ledger.post(tx, {
              accountId: id,
              kind: "grant",
              amountCents: input.initialCreditsCents,
              idempotencyKey: "opening-credit",
              memo: "Opening credit",
            });
          }
          const [account] = await tx.select().from(accounts).where(eq(accounts.id, id));
          return account!;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw new DomainError("conflict", `An account with email ${email} already exists.`, "email");
        throw error;
      }
    },

    async setStatus(accountId: string, status: AccountStatus): Promise<Account> {
      const [account] = await db
        .update(accounts)
        .set({ status, updatedAt: clock.now() })
        .where(eq(accounts.id, accountId))
        .returning();
      if (!account) throw new DomainError("not_found", `No account ${accountId}.`);
      return account;
    },

    async count(): Promise<number> {
      return db.$count(accounts);
    },
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
