import { z } from "zod";
import type { LedgerPageRequest } from "../domain/ledger.js";
import type { LedgerEntry, LedgerEntryKind, RequestRecord } from "../domain/schema/index.js";
import { type DashboardContext, signedIn } from "./context.js";
import { pageAfterCursor, pageArguments, pageTypeDefs } from "./page-arguments.js";

export const ledgerTypeDefs = /* GraphQL */ `
  enum LedgerEntryKind {
    TOPUP
    USAGE
    REFUND
    GRANT
    ADJUSTMENT
    BOOST
  }

  "A request as the ledger shows it: what was asked, and what it cost."
  type RequestSummary {
    "The x-request-id its response carried."
    id: ID!
    model: String!
    endpoint: String!
    "Tokens may exceed 2^31, GraphQL's Int: a Float holds them exactly."
    inputTokens: Float!
    outputTokens: Float!
    costCents: Int!
    "succeeded, cancelled, failed or interrupted"
    status: String!
    createdAt: String!
  }

  "One movement of the balance (SPEC 5): credits are positive, debits negative."
  type LedgerEntry {
    id: ID!
    kind: LedgerEntryKind!
    amountCents: Int!
    balanceAfterCents: Int!
    memo: String
    createdAt: String!
    "The request a usage entry bills; null for entries that bill none."
    request: RequestSummary
  }

  ${pageTypeDefs("LedgerEntry", "LedgerPage")}

  extend type Query {
    "The signed-in account's ledger, newest first, of one kind or all."
    ledger(first: Int = 20, after: String, kind: LedgerEntryKind): LedgerPage!
  }
`;

/** The GraphQL enum's values and the ledger's kinds they stand for. */
const KINDS = {
  TOPUP: "topup",
  USAGE: "usage",
  REFUND: "refund",
  GRANT: "grant",
  ADJUSTMENT: "adjustment",
  BOOST: "boost",
} as const satisfies { [K in LedgerEntryKind as Uppercase<K>]: K };

const ledgerArgs = z.object({ ...pageArguments, kind: z.enum(Object.values(KINDS)).nullish() });

/** An account's ledger entries as the ledger lists them (Ledger.list over the platform's database). */
export type AccountLedger = (accountId: string, page: LedgerPageRequest) => Promise<LedgerEntry[]>;

const ledgerEntryView = (entry: LedgerEntry) => ({
  id: entry.id,
  kind: entry.kind,
  amountCents: entry.amountCents,
  balanceAfterCents: entry.balanceAfterCents,
  memo: entry.memo,
  createdAt: entry.createdAt.toISOString(),
  requestId: entry.requestId,
});

const requestSummaryView = (request: RequestRecord) => ({
  id: request.id,
  model: request.model,
  endpoint: request.endpoint,
  inputTokens: request.inputTokens,
  outputTokens: request.outputTokens,
  costCents: request.costCents,
  status: request.status,
  createdAt: request.createdAt.toISOString(),
});

export function ledgerResolvers({ accountLedger }: { accountLedger: AccountLedger }) {
  return {
    LedgerEntryKind: KINDS,
    Query: {
      ledger: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { accountId } = signedIn(context);
        const { first, after, kind } = ledgerArgs.parse(args);
        // One row past the page says whether another page follows.
        const entries = await pageAfterCursor(accountLedger(accountId, { limit: first + 1, before: after, kind: kind ?? undefined }));
        const nodes = entries.slice(0, first);
        return { nodes: nodes.map(ledgerEntryView), nextCursor: entries.length > first ? nodes.at(-1)!.id : null };
      },
    },
    LedgerEntry: {
      request: async (entry: ReturnType<typeof ledgerEntryView>, _: unknown, context: DashboardContext) => {
        const request = entry.requestId ? await context.loaders.requests.load(entry.requestId) : null;
        return request && requestSummaryView(request);
      },
    },
  };
}
