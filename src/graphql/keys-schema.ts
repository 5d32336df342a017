import { z } from "zod";
import type { ApiKeyView, Keys } from "../domain/keys.js";
import { type DashboardContext, signedIn } from "./context.js";

export const keysTypeDefs = /* GraphQL */ `
  type ApiKey {
    id: ID!
    name: String!
    displayPrefix: String!
    displaySuffix: String!
    createdAt: String!
    lastUsedAt: String
    "active or revoked"
    status: String!
    "null: every model."
    allowedModels: [String!]
  }

  type CreatedKey {
    "The full key: shown this once, never again."
    key: String!
    apiKey: ApiKey!
  }

  extend type Query {
    "The signed-in account's keys, oldest first."
    keys: [ApiKey!]!
  }

  extend type Mutation {
    createKey(name: String!, allowedModels: [String!]): CreatedKey!
    renameKey(id: ID!, name: String!): ApiKey!
    revokeKey(id: ID!): ApiKey!
    "null allows every model."
    setKeyAllowedModels(id: ID!, allowedModels: [String!]): ApiKey!
  }
`;

const id = z.string().max(64);
const name = z.string().trim().min(1).max(64); // SPEC 4
const allowedModels = z.array(z.string().min(1).max(128)).max(100).nullish();
const createKeyInput = z.object({ name, allowedModels });
const renameKeyInput = z.object({ id, name });
const revokeKeyInput = z.object({ id });
const setAllowedModelsInput = z.object({ id, allowedModels });

const keyView = (key: ApiKeyView) => ({
  ...key,
  createdAt: key.createdAt.toISOString(),
  lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
});

export function keysResolvers({ keys }: { keys: Keys }) {
  return {
    Query: {
      keys: async (_: unknown, __: unknown, context: DashboardContext) => (await keys.list(signedIn(context).accountId)).map(keyView),
    },
    Mutation: {
      createKey: async (_: unknown, args: unknown, context: DashboardContext) => {
        const input = createKeyInput.parse(args);
        const { key, apiKey } = await keys.create({ accountId: signedIn(context).accountId, name: input.name, allowedModels: input.allowedModels ?? null });
        return { key, apiKey: keyView(apiKey) };
      },
      renameKey: async (_: unknown, args: unknown, context: DashboardContext) => {
        const input = renameKeyInput.parse(args);
        return keyView(await keys.update(input.id, signedIn(context).accountId, { name: input.name }));
      },
      revokeKey: async (_: unknown, args: unknown, context: DashboardContext) =>
        keyView(await keys.revoke(revokeKeyInput.parse(args).id, signedIn(context).accountId)),
      setKeyAllowedModels: async (_: unknown, args: unknown, context: DashboardContext) => {
        const input = setAllowedModelsInput.parse(args);
        return keyView(await keys.update(input.id, signedIn(context).accountId, { allowedModels: input.allowedModels ?? null }));
      },
    },
  };
}
