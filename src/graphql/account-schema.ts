import { z } from "zod";
import type { Accounts } from "../domain/accounts.js";
import type { DashboardAccounts } from "../domain/dashboard-accounts.js";
import { effectiveLimits } from "../domain/limits/defaults.js";
import { passwordInput } from "../domain/passwords.js";
import type { Account } from "../domain/schema/index.js";
import type { Sessions } from "../domain/sessions.js";
import { type DashboardContext, signedIn } from "./context.js";

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

  type Session {
    "Send as Authorization: Bearer <token>. Shown once."
    token: String!
    expiresAt: String!
    account: Account!
  }

  extend type Query {
    "The signed-in account."
    me: Account!
  }

  extend type Mutation {
    "A new account with no credit. Passwords are 10 to 256 characters."
    signUp(email: String!, password: String!, displayName: String): Account!
    signIn(email: String!, password: String!): Session!
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

export function accountResolvers({ accounts, dashboardAccounts, sessions }: { accounts: Accounts; dashboardAccounts: DashboardAccounts; sessions: Sessions }) {
  return {
    Query: {
      me: async (_: unknown, __: unknown, context: DashboardContext) => accountView(await accounts.get(signedIn(context).accountId)),
    },
    Mutation: {
      signUp: async (_: unknown, args: unknown) => {
        const { displayName, ...input } = signUpInput.parse(args);
        return accountView(await dashboardAccounts.signUp({ ...input, displayName: displayName ?? undefined }));
      },
      signIn: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { token, expiresAt, account } = await dashboardAccounts.signIn(signInInput.parse(args), context.clientAddress);
        return { token, expiresAt: expiresAt.toISOString(), account: accountView(account) };
      },
      signOut: async (_: unknown, __: unknown, context: DashboardContext) => {
        await sessions.end(signedIn(context).id);
        return true;
      },
      signOutEverywhere: async (_: unknown, __: unknown, context: DashboardContext) => {
        await sessions.endAll(signedIn(context).accountId);
        return true;
      },
      changePassword: async (_: unknown, args: unknown, context: DashboardContext) => {
        await dashboardAccounts.changePassword(signedIn(context), changePasswordInput.parse(args));
        return true;
      },
    },
  };
}
