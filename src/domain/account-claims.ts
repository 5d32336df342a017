import { and, eq, gt } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import type { AuthFailureLimits } from "./limits/auth-failure-limits.js";
import { hashPassword } from "./passwords.js";
import { type Account, accounts } from "./schema/index.js";
import { hashSecretToken, newSecretToken } from "./secret-tokens.js";
import type { Sessions } from "./sessions.js";
import { inScope, type TxScope } from "./tx-scope.js";

export const CLAIM_TOKEN_HOURS = { default: 72, max: 720 } as const;

export interface IssuedClaimToken {
  accountId: string;
  /** Shown once: give it to the account's owner, who signs up with it. */
  claimToken: string;
  expiresAt: Date;
}

// One answer for an unknown, used and expired token: the caller learns nothing about which.
const unusableToken = () =>
  new DomainError("unauthorized", "This sign-up token is invalid, used or expired. Ask the operator for a new one.", "token");

/**
 * Handing an account that ops created to its owner (issue: "an account created
 * through ops can be claimed"). Ops issues a one-time token; whoever presents
 * it sets the account's password and is signed in. Issuing again replaces the
 * previous token, and claiming ends every existing session, so ops can also use
 * it to give an owner who lost the password a way back in.
 */
export function createAccountClaims({ db, clock, sessions, failures }: { db: Db; clock: Clock; sessions: Sessions; failures: AuthFailureLimits }) {
  return {
    async issue(accountId: string, validForHours: number, scope?: TxScope): Promise<IssuedClaimToken> {
      const claimToken = newSecretToken("claim");
      const expiresAt = new Date(clock.now().getTime() + validForHours * 3_600_000);
      return inScope(db, scope, async ({ tx }) => {
        const [account] = await tx
          .update(accounts)
          .set({ claimTokenHash: hashSecretToken(claimToken), claimTokenExpiresAt: expiresAt, updatedAt: clock.now() })
          .where(eq(accounts.id, accountId))
          .returning({ id: accounts.id });
        if (!account) throw new DomainError("not_found", `No account ${accountId}.`);
        return { accountId, claimToken, expiresAt };
      });
    },

    /** Sets the password and signs in; the token works once. Failures count against the caller's address. */
    async claim(input: { token: string; password: string }, clientAddress: string): Promise<{ token: string; expiresAt: Date; account: Account }> {
      failures.refuseIfOverLimit(clientAddress);
      const tokenHash = hashSecretToken(input.token);
      const usable = and(eq(accounts.claimTokenHash, tokenHash), gt(accounts.claimTokenExpiresAt, clock.now()));
      // Looked up before the password is hashed, so a guessed token costs no argon2 run.
      const [candidate] = await db.select({ id: accounts.id }).from(accounts).where(usable);
      if (!candidate) {
        await failures.countFailure(clientAddress);
        throw unusableToken();
      }
      const passwordHash = await hashPassword(input.password);
      // The token is spent in the same statement that sets the password: two claims racing cannot both win.
      const [account] = await db
        .update(accounts)
        .set({ passwordHash, claimTokenHash: null, claimTokenExpiresAt: null, updatedAt: clock.now() })
        .where(usable)
        .returning();
      if (!account) throw unusableToken();
      await sessions.endAll(account.id);
      if (account.status === "suspended") throw new DomainError("account_suspended", "This account is suspended. Contact SentX support.");
      return { ...(await sessions.start(account.id)), account };
    },
  };
}

export type AccountClaims = ReturnType<typeof createAccountClaims>;
