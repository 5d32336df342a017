import { z } from "zod";
import type { IdentityDirectory } from "../domain/identity-directory.js";
import type { Conversation, EndUser } from "../domain/schema/index.js";
import { type DashboardContext, signedIn } from "./context.js";
import { optionalId, pageAfterCursor, pageArguments, pageTypeDefs } from "./page-arguments.js";

// SPEC 3: the account's end users and conversations, each with the running totals of the requests that named it.
const totals = /* GraphQL */ `
    requestCount: Float!
    "Tokens may exceed 2^31, GraphQL's Int: a Float holds them exactly."
    inputTokens: Float!
    outputTokens: Float!
    costCents: Int!
    firstSeenAt: String!
    lastSeenAt: String!
`;

export const identitiesTypeDefs = /* GraphQL */ `
  "An end user of the account's integration, by the id it sends (user, X-User-Id)."
  type EndUser {
    id: ID!
    externalId: String!
    displayName: String
    ${totals}
  }

  "A conversation, by the id the integration sends (X-Session-Id)."
  type Conversation {
    id: ID!
    externalId: String!
    "The end user its latest request named; null when none named one."
    endUser: EndUser
    ${totals}
  }

  ${pageTypeDefs("EndUser")}
  ${pageTypeDefs("Conversation")}

  extend type Query {
    "The signed-in account's end users, newest first."
    endUsers(first: Int = 20, after: String): EndUserPage!
    "The signed-in account's conversations, newest first; with endUserId, only that end user's."
    conversations(first: Int = 20, after: String, endUserId: ID): ConversationPage!
  }
`;

const endUsersArgs = z.object(pageArguments);
const conversationsArgs = z.object({ ...pageArguments, endUserId: optionalId("Pass an end user's id, as endUsers shows it.") });

const totalsView = (row: EndUser | Conversation) => ({
  id: row.id,
  externalId: row.externalId,
  requestCount: row.requestCount,
  inputTokens: row.inputTokens,
  outputTokens: row.outputTokens,
  costCents: row.costCents,
  firstSeenAt: row.firstSeenAt.toISOString(),
  lastSeenAt: row.lastSeenAt.toISOString(),
});

const endUserView = (endUser: EndUser) => ({ ...totalsView(endUser), displayName: endUser.displayName });
const conversationView = (conversation: Conversation) => ({ ...totalsView(conversation), endUserId: conversation.endUserId });

export function identitiesResolvers({ identities }: { identities: IdentityDirectory }) {
  return {
    Query: {
      endUsers: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { accountId } = signedIn(context);
        const { first, after } = endUsersArgs.parse(args);
        const page = await pageAfterCursor(identities.endUsers.list(accountId, { limit: first, cursor: after }));
        return { nodes: page.data.map(endUserView), nextCursor: page.nextCursor };
      },
      // Another account's end user has no conversations here: the list is empty, as for an unknown id.
      conversations: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { accountId } = signedIn(context);
        const { first, after, endUserId } = conversationsArgs.parse(args);
        const page = await pageAfterCursor(identities.conversations.list(accountId, { limit: first, cursor: after, endUserId }));
        return { nodes: page.data.map(conversationView), nextCursor: page.nextCursor };
      },
    },
    Conversation: {
      endUser: async (conversation: ReturnType<typeof conversationView>, _: unknown, context: DashboardContext) => {
        const endUser = conversation.endUserId ? await context.loaders.endUsers.load(conversation.endUserId) : null;
        return endUser && endUserView(endUser);
      },
    },
  };
}
