import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { FieldNode, GraphQLError, ValidationContext } from "graphql";
import { createGraphQLError, createSchema, createYoga, type Plugin } from "graphql-yoga";
import type { AccountClaims } from "../domain/account-claims.js";
import type { Accounts } from "../domain/accounts.js";
import type { DashboardAccounts } from "../domain/dashboard-accounts.js";
import type { Files } from "../domain/files/files.js";
import type { IdentityDirectory } from "../domain/identity-directory.js";
import type { Keys } from "../domain/keys.js";
import type { Logger } from "../domain/logger.js";
import type { RequestHistory } from "../domain/request-history.js";
import type { Sessions } from "../domain/sessions.js";
import { accountResolvers, accountTypeDefs } from "./account-schema.js";
import { type DashboardContext, type DashboardServerContext, sessionOf } from "./context.js";
import { csrfTokenRequired, refusedContentType } from "./csrf-defence.js";
import { dashboardCors } from "./dashboard-cors.js";
import { maskDashboardError } from "./errors.js";
import { keysResolvers, keysTypeDefs } from "./keys-schema.js";
import { filesResolvers, filesTypeDefs } from "./files-schema.js";
import { identitiesResolvers, identitiesTypeDefs } from "./identities-schema.js";
import { type AccountLedger, ledgerResolvers, ledgerTypeDefs } from "./ledger-schema.js";
import { createDashboardLoaders } from "./loaders.js";
import { usageResolvers, usageTypeDefs } from "./usage-schema.js";
import { topUpsResolvers, topUpsTypeDefs } from "./top-ups-schema.js";
import type { TopUpCheckouts } from "../domain/top-ups/checkout.js";
import type { UsageSeriesService } from "../domain/usage-series.js";

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

// Production answers only the operations it is sent: no schema browsing (it maps the attack surface) and no GraphiQL.
// By field name rather than graphql's NoSchemaIntrospectionCustomRule, whose type checks fail when the schema was
// built by the other copy (CommonJS or ESM) of graphql.
const noIntrospection: Plugin = {
  onValidate: ({ addValidationRule }) =>
    addValidationRule((context: ValidationContext) => ({
      Field(node: FieldNode) {
        if (node.name.value === "__schema" || node.name.value === "__type") {
          context.reportError(createGraphQLError("Introspection is off on this server (GRAPHQL_DEV_TOOLS).", { nodes: node }));
        }
      },
    })),
};

/** The dashboard API's schema, every part of it: also what the web dashboard's typed client is generated from (npm run web:schema). */
export const dashboardTypeDefs = [
  /* GraphQL */ `
    type Query {
      "The platform's name, to check the dashboard API is reachable."
      platform: String!
    }
    type Mutation
  `,
  accountTypeDefs,
  keysTypeDefs,
  filesTypeDefs,
  ledgerTypeDefs,
  identitiesTypeDefs,
  usageTypeDefs,
  topUpsTypeDefs,
];

export interface DashboardGraphQLDeps {
  /** Browser origins the dashboard is served from (DASHBOARD_ORIGINS). */
  dashboardOrigins: readonly string[];
  /** Introspection and GraphiQL at GET /graphql: for development (GRAPHQL_DEV_TOOLS). */
  devTools: boolean;
  logger: Logger;
  accounts: Accounts;
  dashboardAccounts: DashboardAccounts;
  claims: AccountClaims;
  sessions: Sessions;
  keys: Keys;
  files: Files;
  accountLedger: AccountLedger;
  identities: IdentityDirectory;
  requests: RequestHistory;
  usage: UsageSeriesService;
  topUps: TopUpCheckouts;
}

/** The dashboard API (SPEC 11): every resolver sees only the signed-in session's account. */
export function createDashboardGraphQL({
  dashboardOrigins,
  devTools,
  logger,
  accounts,
  dashboardAccounts,
  claims,
  sessions,
  keys,
  files,
  accountLedger,
  identities,
  requests,
  usage,
  topUps,
}: DashboardGraphQLDeps) {
  const { cors, varyByOrigin } = dashboardCors(dashboardOrigins);
  const account = accountResolvers({ accounts, dashboardAccounts, claims, sessions });
  const keyResolvers = keysResolvers({ keys });
  const fileResolvers = filesResolvers({ files });
  const ledger = ledgerResolvers({ accountLedger });
  const identity = identitiesResolvers({ identities });
  const usageSeries = usageResolvers({ usage });
  const topUp = topUpsResolvers({ topUps });
  const yoga = createYoga<DashboardServerContext, DashboardContext>({
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
    graphiql: devTools,
    context: async ({ request, clientAddress, responseHeaders }) => {
      const signIn = await sessionOf(request, sessions);
      return { clientAddress, responseHeaders, ...signIn, loaders: createDashboardLoaders({ identities, requests }, signIn.session) };
    },
    cors,
    // Also hides the field names a misspelt query would otherwise be offered ("Did you mean …").
    plugins: [EnvelopArmorPlugin(queryLimits), varyByOrigin, csrfTokenRequired, ...(devTools ? [] : [noIntrospection])],
    schema: createSchema({
      typeDefs: dashboardTypeDefs,
      resolvers: {
        Query: { platform: () => "SentX", ...account.Query, ...keyResolvers.Query, ...fileResolvers.Query, ...ledger.Query, ...identity.Query, ...usageSeries.Query, ...topUp.Query },
        Mutation: { ...account.Mutation, ...keyResolvers.Mutation, ...fileResolvers.Mutation, ...topUp.Mutation },
        LedgerEntryKind: ledger.LedgerEntryKind,
        LedgerEntry: ledger.LedgerEntry,
        Conversation: identity.Conversation,
        UsageBucket: usageSeries.UsageBucket,
        UsageDimension: usageSeries.UsageDimension,
      },
    }),
  });

  return {
    /** Answers one HTTP request, with the Set-Cookie headers its resolvers asked for. */
    async fetch(request: Request, clientAddress: string): Promise<Response> {
      const refused = refusedContentType(request);
      if (refused) return refused;
      const responseHeaders = new Headers();
      const response = await yoga.fetch(request, { clientAddress, responseHeaders });
      for (const [name, value] of responseHeaders) response.headers.append(name, value);
      return response;
    },
  };
}
