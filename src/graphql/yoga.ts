import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { GraphQLError, ValidationContext } from "graphql";
import { createSchema, createYoga } from "graphql-yoga";
import type { Accounts } from "../domain/accounts.js";
import type { DashboardAccounts } from "../domain/dashboard-accounts.js";
import type { Keys } from "../domain/keys.js";
import type { Logger } from "../domain/logger.js";
import type { Sessions } from "../domain/sessions.js";
import { accountResolvers, accountTypeDefs } from "./account-schema.js";
import { type DashboardContext, type DashboardServerContext, sessionOf } from "./context.js";
import { dashboardCors } from "./dashboard-cors.js";
import { maskDashboardError } from "./errors.js";
import { keysResolvers, keysTypeDefs } from "./keys-schema.js";

// Reported like any invalid query (400, GRAPHQL_VALIDATION_FAILED); thrown, as by default, they would answer 200.
const asValidationError = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

// SPEC 11: depth and cost limits, with room for any dashboard page. The token
// limit bounds parsing itself: a query of 100,000 aliases is refused at its
// 1,001st token (a parse error, 400) instead of being parsed whole and then counted.
const queryLimits = {
  maxTokens: { n: 1_000 },
  maxAliases: { n: 15, ...asValidationError },
  maxDepth: { n: 8, ...asValidationError },
  maxDirectives: { n: 50, ...asValidationError },
  costLimit: { maxCost: 5_000, ...asValidationError },
};

export interface DashboardGraphQLDeps {
  /** Browser origins the dashboard is served from (DASHBOARD_ORIGINS). */
  dashboardOrigins: readonly string[];
  logger: Logger;
  accounts: Accounts;
  dashboardAccounts: DashboardAccounts;
  sessions: Sessions;
  keys: Keys;
}

/** The dashboard API (SPEC 11): every resolver sees only the signed-in session's account. */
export function createDashboardGraphQL({ dashboardOrigins, logger, accounts, dashboardAccounts, sessions, keys }: DashboardGraphQLDeps) {
  const { cors, varyByOrigin } = dashboardCors(dashboardOrigins);
  const account = accountResolvers({ accounts, dashboardAccounts, sessions });
  const keyResolvers = keysResolvers({ keys });
  return createYoga<DashboardServerContext, DashboardContext>({
    graphqlEndpoint: "/graphql",
    // An error no resolver meant to show becomes "Unexpected error.", without its stack even under NODE_ENV=development…
    // A DomainError keeps its message and code (see maskDashboardError).
    maskedErrors: { isDev: false, maskError: maskDashboardError },
    // …and the original goes to our log rather than to stderr.
    logging: {
      debug: () => {},
      info: () => {},
      warn: (...details: unknown[]) => logger.warn({ details }, "graphql-yoga warning"),
      error: (error: unknown) => logger.error({ err: error }, "GraphQL request failed"),
    },
    landingPage: false,
    context: async ({ request, clientAddress }) => ({ clientAddress, session: await sessionOf(request, sessions) }),
    cors,
    // Also hides the field names a misspelt query would otherwise be offered ("Did you mean …").
    plugins: [EnvelopArmorPlugin(queryLimits), varyByOrigin],
    schema: createSchema({
      typeDefs: [
        /* GraphQL */ `
          type Query {
            "The platform's name, to check the dashboard API is reachable."
            platform: String!
          }
          type Mutation
        `,
        accountTypeDefs,
        keysTypeDefs,
      ],
      resolvers: {
        Query: { platform: () => "SentX", ...account.Query, ...keyResolvers.Query },
        Mutation: { ...account.Mutation, ...keyResolvers.Mutation },
      },
    }),
  });
}
