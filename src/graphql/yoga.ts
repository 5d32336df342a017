import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { GraphQLError, ValidationContext } from "graphql";
import { createSchema, createYoga } from "graphql-yoga";
import type { Logger } from "../domain/logger.js";
import { dashboardCors } from "./dashboard-cors.js";

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
}

// The dashboard API's mount point; its schema grows with the dashboard issue.
export function createDashboardGraphQL({ dashboardOrigins, logger }: DashboardGraphQLDeps) {
  const { cors, varyByOrigin } = dashboardCors(dashboardOrigins);
  return createYoga({
    graphqlEndpoint: "/graphql",
    // An error no resolver meant to show becomes "Unexpected error.", without its stack even under NODE_ENV=development…
    maskedErrors: { isDev: false },
    // …and the original goes to our log rather than to stderr.
    logging: {
      debug: () => {},
      info: () => {},
      warn: (...details: unknown[]) => logger.warn({ details }, "graphql-yoga warning"),
      error: (error: unknown) => logger.error({ err: error }, "GraphQL request failed"),
    },
    landingPage: false,
    cors,
    // Also hides the field names a misspelt query would otherwise be offered ("Did you mean …").
    plugins: [EnvelopArmorPlugin(queryLimits), varyByOrigin],
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Query {
          "The platform's name, to check the dashboard API is reachable."
          platform: String!
        }
      `,
      resolvers: { Query: { platform: () => "SentX" } },
    }),
  });
}
