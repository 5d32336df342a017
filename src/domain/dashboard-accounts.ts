import { eq } from "drizzle-orm";
import type { Accounts } from "./accounts.js";
import type { Db } from "./db.js";
import { DomainError, isDomainError } from "./errors.js";
import type { AuthFailureLimits } from "./limits/auth-failure-limits.js";
import { hashPassword, passwordMatches } from "./passwords.js";
import { type Account, accounts as accountsTable } from "./schema/index.js";
import type { DashboardSession, Sessions } from "./sessions.js";

/**
 * The seam for proving an email address and recovering a lost password: not
 * built yet. Sign-up does not wait for verification, and no reset exists;
 * an implementation would send a single-use token by email and, on reset,
 * set the password and end every session (as changePassword does).
 */
export interface AccountRecovery {
  sendVerificationEmail(account: Account): Promise<void>;
  sendPasswordReset(email: string): Promise<void>;
  resetPassword(resetToken: string, newPassword: string): Promise<void>;
}

export interface DashboardAccountsDeps {
  db: Db;
  accounts: Accounts;
  sessions: Sessions;
  /** Failed sign-ins per client address. */
  addressFailures: AuthFailureLimits;
  /** Failed sign-ins per email, known or not, so one account cannot be guessed at from many addresses. */
  emailFailures: AuthFailureLimits;
}

// One answer for an unknown email and a wrong password: sign-in must not reveal who has an account.
const badCredentials = () => new DomainError("unauthorized", "Incorrect email or password.");

/** Sign-up, sign-in and passwords of account owners, for the dashboard (SPEC 11). */
export function createDashboardAccounts({ db, accounts, sessions, addressFailures, emailFailures }: DashboardAccountsDeps) {
  return {
    /** A new account with no credit; a taken email is a conflict. */
    async signUp(input: { email: string; password: string; displayName?: string | undefined }): Promise<Account> {
      const passwordHash = await hashPassword(input.password);
      return accounts.create({ email: input.email, passwordHash, ...(input.displayName !== undefined && { displayName: input.displayName }) });
    },

    /** Past either failure limit the answer is 429, before the password is even checked. */
    async signIn(input: { email: string; password: string }, clientAddress: string) {
      const email = input.email.toLowerCase();
      addressFailures.refuseIfOverLimit(clientAddress);
      emailFailures.refuseIfOverLimit(email);
      const account = await accounts.findByEmail(email).catch((error: unknown) => {
        if (isDomainError(error) && error.code === "not_found") return null;
        throw error;
      });
      if (!(await passwordMatches(account?.passwordHash ?? null, input.password)) || !account) {
        await addressFailures.countFailure(clientAddress);
        await emailFailures.countFailure(email);
        throw badCredentials();
      }
      if (account.status === "suspended") throw new DomainError("account_suspended", "This account is suspended. Contact SentX support.");
      return { ...(await sessions.start(account.id)), account };
    },

    /** Keeps the session that made the change; every other one ends, as the old password may have leaked. */
    async changePassword(session: DashboardSession, input: { currentPassword: string; newPassword: string }): Promise<void> {
      const account = await accounts.get(session.accountId);
      if (!(await passwordMatches(account.passwordHash, input.currentPassword))) {
        throw new DomainError("unauthorized", "The current password is incorrect.", "currentPassword");
      }
      const passwordHash = await hashPassword(input.newPassword);
      await db.update(accountsTable).set({ passwordHash }).where(eq(accountsTable.id, account.id));
      await sessions.endAll(account.id, session.id);
    },
  };
}

export type DashboardAccounts = ReturnType<typeof createDashboardAccounts>;
