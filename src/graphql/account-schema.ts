import { z } from "zod";
import type { AccountClaims } from "../domain/account-claims.js";
import type { Accounts } from "../domain/accounts.js";
import type { DashboardAccounts } from "../domain/dashboard-accounts.js";
import { effectiveLimits } from "../domain/limits/defaults.js";
import { passwordInput } from "../domain/passwords.js";
import type { Account } from "../domain/schema/index.js";
import type { Sessions } from "../domain/sessions.js";
import { type DashboardContext, signedIn } from "./context.js";
import { clearedSessionCookie, csrfTokenFor, sessionCookie } from "./session-cookie.js";

export const accountTypeDefs = /* GraphQL */ `
  type AccountLimits {
    requestsPerMinute: Int!
    concurrentStreams: Int!
    keyCreationsPerHour: Int!
    maxActiveKeys: Int!
  }

  type Account {
    id: ID!
    email: String!
    displayName: String!
    plan: String!
    balanceCents: Int!
    heldCents: Int!
    availableCents: Int!
    limits: AccountLimits!
  }

  """
  A signed-in session. Scripts send the token as Authorization: Bearer <token>;
  browsers also get it as an HttpOnly cookie, and then send csrfToken in the
  x-csrf-token header with every mutation.
  """
  type Session {
    "Shown once."
    token: String!
    csrfToken: String!
    expiresAt: String!
    account: Account!
  }

  extend type Query {
    "The signed-in account."
    me: Account!
    "The CSRF token of a cookie session (for a page reloaded after sign-in); null for a Bearer session or none."
    csrfToken: String
  }

  extend type Mutation {
    "A new account with no credit. Passwords are 10 to 256 characters."
    signUp(email: String!, password: String!, displayName: String): Account!
    signIn(email: String!, password: String!): Session!
    "Signs up to an account an operator created, with the one-time token they gave you; sets its password."
    claimAccount(token: String!, password: String!): Session!
    "Ends this session."
    signOut: Boolean!
    "Ends every session of the account, this one included."
    signOutEverywhere: Boolean!
    "Ends every other session."
    changePassword(currentPassword: String!, newPassword: String!): Boolean!
  }
`;

const email = z.email().max(254);
const signUpInput = z.object({ email, password: passwordInput, displayName: z.string().trim().min(1).max(100).nullish() });
// Any password is checked at sign-in, but not an unbounded one: argon2 over megabytes would be a cheap attack.
const signInInput = z.object({ email, password: z.string().max(256) });
const changePasswordInput = z.object({ currentPassword: z.string().max(256), newPassword: passwordInput });
const claimInput = z.object({ token: z.string().max(128), password: passwordInput });

const accountView = (account: Account) => ({
  id: account.id,
  email: account.email,
  displayName: account.displayName,
  plan: account.plan,
  balanceCents: account.balanceCents,
  heldCents: account.heldCents,
  availableCents: account.balanceCents - account.heldCents,
  limits: effectiveLimits(account.limits),
});

/** A new session as the API answers it, and as a cookie for a browser. */
function sessionView(context: DashboardContext, { token, expiresAt, account }: { token: string; expiresAt: Date; account: Account }) {
  context.responseHeaders.append("set-cookie", sessionCookie(token, expiresAt));
  return { token, csrfToken: csrfTokenFor(token), expiresAt: expiresAt.toISOString(), account: accountView(account) };
}

interface AccountResolverDeps {
  accounts: Accounts;
  dashboardAccounts: DashboardAccounts;
  claims: AccountClaims;
  sessions: Sessions;
}

export function accountResolvers({ accounts, dashboardAccounts, claims, sessions }: AccountResolverDeps) {
  const ended = (context: DashboardContext) => {
    context.responseHeaders.append("set-cookie", clearedSessionCookie());
    return true;
  };
  return {
    Query: {
      me: async (_: unknown, __: unknown, context: DashboardContext) => accountView(await accounts.get(signedIn(context).accountId)),
      csrfToken: (_: unknown, __: unknown, context: DashboardContext) =>
        context.proof === "bearer" || !context.sessionToken ? null : csrfTokenFor(context.sessionToken),
    },
    Mutation: {
      signUp: async (_: unknown, args: unknown) => {
        const { displayName, ...input } = signUpInput.parse(args);
        return accountView(await dashboardAccounts.signUp({ ...input, displayName: displayName ?? undefined }));
      },
      signIn: async (_: unknown, args: unknown, context: DashboardContext) =>
        sessionView(context, await dashboardAccounts.signIn(signInInput.parse(args), context.clientAddress)),
      claimAccount: async (_: unknown, args: unknown, context: DashboardContext) =>
        sessionView(context, await claims.claim(claimInput.parse(args), context.clientAddress)),
      signOut: async (_: unknown, __: unknown, context: DashboardContext) => {
        await sessions.end(signedIn(context).id);
        return ended(context);
      },
      signOutEverywhere: async (_: unknown, __: unknown, context: DashboardContext) => {
        await sessions.endAll(signedIn(context).accountId);
        return ended(context);
      },
      changePassword: async (_: unknown, args: unknown, context: DashboardContext) => {
        await dashboardAccounts.changePassword(signedIn(context), changePasswordInput.parse(args));
        return true;
      },
    },
  };
}
