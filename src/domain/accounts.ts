import { eq } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db, DbOrTx } from "./db.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import type { InvalidationBus } from "./invalidation.js";
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

export interface AccountsDeps {
  db: Db;
  clock: Clock;
  ledger: Ledger;
  bus: InvalidationBus;
}

export function createAccounts({ db, clock, ledger, bus }: AccountsDeps) {
  async function get(accountId: string): Promise<Account> {
    const [account] = await db.select().from(accounts).where(eq(accounts.id, accountId));
    if (!account) throw new DomainError("not_found", `No account ${accountId}.`);
    return account;
  }

  async function update(tx: DbOrTx, accountId: string, changes: Partial<Pick<Account, "status" | "limits">>): Promise<Account> {
    const [account] = await tx
      .update(accounts)
      .set({ ...changes, updatedAt: clock.now() })
      .where(eq(accounts.id, accountId))
      .returning();
    if (!account) throw new DomainError("not_found", `No account ${accountId}.`);
    return account;
  }

  /** Every instance's cached copy is stale once a change commits (not before, or a cache could refill with the old row). */
  async function announce(account: Account): Promise<Account> {
    await bus.publish({ kind: "account", accountId: account.id });
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
      return announce(await update(db, accountId, { status }));
    },

    /**
     * Overrides some limits; a null field goes back to the platform default.
     * Applies to the next request on every instance, without a restart.
     */
    async setLimits(accountId: string, changes: { [K in keyof AccountLimits]?: number | null }): Promise<Account> {
      const account = await db.transaction(async (tx) => {
        const [current] = await tx.select({ limits: accounts.limits }).from(accounts).where(eq(accounts.id, accountId)).for("update");
        if (!current) throw new DomainError("not_found", `No account ${accountId}.`);
        const limits: AccountLimits = { ...current.limits };
        for (const [name, value] of Object.entries(changes) as Array<[keyof AccountLimits, number | null | undefined]>) {
          if (value === null) delete limits[name];
          else if (value !== undefined) limits[name] = value;
        }
        return update(tx, accountId, { limits });
      });
      return announce(account);
    },

    async count(): Promise<number> {
      return db.$count(accounts);
    },
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
