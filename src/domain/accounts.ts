import { and, eq } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import { newId } from "./ids.js";
import type { InvalidationBus } from "./invalidation.js";
import { newestFirstPage, type Page, type PageRequest } from "./keyset-page.js";
import type { Ledger } from "./ledger.js";
import { equalsIfGiven } from "./list-filters.js";
import { type Account, type AccountLimits, type AccountStatus, accounts } from "./schema/index.js";
import { inScope, type TxScope } from "./tx-scope.js";

export interface CreateAccountInput {
  email: string;
  displayName?: string;
  plan?: string;
  initialCreditsCents?: number;
  limits?: AccountLimits;
  /** argon2id; accounts made by ops have none until a password is set. */
  passwordHash?: string;
}

const isUniqueViolation = (error: unknown): boolean =>
  (error as { code?: string })?.code === "23505" || (error as { cause?: { code?: string } })?.cause?.code === "23505";

export interface ListAccountsQuery extends PageRequest {
  status?: AccountStatus | undefined;
  plan?: string | undefined;
}

const newestFirst = { table: accounts, at: accounts.createdAt, id: accounts.id };

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

  /** Changes the account in the scope's transaction; every instance's cached copy is dropped once that commits. */
  async function update(scope: TxScope, accountId: string, changes: Partial<Pick<Account, "status" | "plan" | "limits">>): Promise<Account> {
    const [account] = await scope.tx
      .update(accounts)
      .set({ ...changes, updatedAt: clock.now() })
      .where(eq(accounts.id, accountId))
      .returning();
    if (!account) throw new DomainError("not_found", `No account ${accountId}.`);
    // After the commit, not before, or a cache could refill with the old row.
    scope.afterCommit(() => bus.publish({ kind: "account", accountId }));
    return account;
  }

  const change = (accountId: string, changes: Partial<Pick<Account, "status" | "plan">>, scope?: TxScope): Promise<Account> =>
    inScope(db, scope, (scope) => update(scope, accountId, changes));

  return {
    get,

    async findByEmail(email: string): Promise<Account> {
      const [account] = await db.select().from(accounts).where(eq(accounts.email, email.toLowerCase()));
      if (!account) throw new DomainError("not_found", `No account with email ${email}.`, "email");
      return account;
    },

    list(query: ListAccountsQuery): Promise<Page<Account>> {
      return newestFirstPage(db, newestFirst, and(equalsIfGiven(accounts.status, query.status), equalsIfGiven(accounts.plan, query.plan)), query);
    },

    /** Creates the account and, in the same transaction, credits its opening balance through the ledger. */
    async create(input: CreateAccountInput, scope?: TxScope): Promise<Account> {
      const id = newId.account();
      const email = input.email.toLowerCase();
      try {
        return await inScope(db, scope, async ({ tx }) => {
          const now = clock.now();
          await tx.insert(accounts).values({
            id,
            email,
            displayName: input.displayName ?? email,
            plan: input.plan ?? "payg",
            limits: input.limits ?? {},
            passwordHash: input.passwordHash ?? null,
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

    setStatus: (accountId: string, status: AccountStatus, scope?: TxScope): Promise<Account> => change(accountId, { status }, scope),

    /** The plan decides weekly quotas (SPEC 10); like every account change it reaches every instance's cache. */
    setPlan: (accountId: string, plan: string, scope?: TxScope): Promise<Account> => change(accountId, { plan }, scope),

    /**
     * Overrides some limits; a null field goes back to the platform default.
     * Applies to the next request on every instance, without a restart.
     */
    setLimits(accountId: string, changes: { [K in keyof AccountLimits]?: number | null }, scope?: TxScope): Promise<Account> {
      return inScope(db, scope, async (scope) => {
        const [current] = await scope.tx.select({ limits: accounts.limits }).from(accounts).where(eq(accounts.id, accountId)).for("update");
        if (!current) throw new DomainError("not_found", `No account ${accountId}.`);
        const limits: AccountLimits = { ...current.limits };
        for (const [name, value] of Object.entries(changes) as Array<[keyof AccountLimits, number | null | undefined]>) {
          if (value === null) delete limits[name];
          else if (value !== undefined) limits[name] = value;
        }
        return update(scope, accountId, { limits });
      });
    },

    async count(): Promise<number> {
      return db.$count(accounts);
    },
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
