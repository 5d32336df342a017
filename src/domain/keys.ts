import { createHash } from "node:crypto";
import { and, count, eq, gt, min } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db, DbOrTx } from "./db.js";
import { DomainError, RetryLaterError } from "./errors.js";
import type { InvalidationBus } from "./invalidation.js";
import { newId, randomBase62 } from "./ids.js";
import { effectiveLimits } from "./limits/defaults.js";
import { equalsIfGiven } from "./list-filters.js";
import { type Account, type ApiKey, accounts, apiKeys } from "./schema/index.js";
import { inScope, type TxScope } from "./tx-scope.js";

// SPEC 4: `sk-` then at least 32 random base62 characters. 48 gives ~285 bits.
const KEY_RANDOM_LENGTH = 48;
const KEY_FORMAT = /^sk-[0-9A-Za-z]{32,}$/;
const HOUR_MS = 3_600_000;

/** Keys are long random secrets, so a fast hash is enough: no dictionary to attack. */
export const hashApiKey = (key: string): string => createHash("sha256").update(key).digest("hex");

export const isApiKeyFormat = (candidate: string): boolean => KEY_FORMAT.test(candidate);

export interface CreateKeyInput {
  accountId: string;
  name: string;
  allowedModels?: string[] | null;
  expiresAt?: Date | null;
}

/** A key as everyone but its creator sees it: never the secret. */
export type ApiKeyView = Omit<ApiKey, "hash">;

export const toKeyView = ({ hash: _hash, ...view }: ApiKey): ApiKeyView => view;

/** The keys whose display prefix (`sk-` and 4 characters) is this, of one account or of all. */
function withDisplayPrefix(db: DbOrTx, displayPrefix: string, accountId?: string): Promise<ApiKey[]> {
  return db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.displayPrefix, displayPrefix), equalsIfGiven(apiKeys.accountId, accountId)))
    .orderBy(apiKeys.createdAt);
}

export function createKeys({ db, clock, bus }: { db: Db; clock: Clock; bus: InvalidationBus }) {
  async function revoke(keyId: string, accountId?: string, scope?: TxScope): Promise<ApiKeyView> {
    const where = and(eq(apiKeys.id, keyId), equalsIfGiven(apiKeys.accountId, accountId));
    return inScope(db, scope, async ({ tx, afterCommit }) => {
      const [row] = await tx
        .update(apiKeys)
        .set({ status: "revoked", revokedAt: clock.now() })
        .where(and(where, eq(apiKeys.status, "active")))
        .returning();
      if (row) {
        // SPEC 4: every instance stops accepting the key within a second, once the revocation has committed.
        afterCommit(() => bus.publish({ kind: "key", keyId: row.id }));
        return toKeyView(row);
      }
      const [existing] = await tx.select().from(apiKeys).where(where);
      if (!existing) throw new DomainError("not_found", `No key ${keyId}.`);
      return toKeyView(existing); // already revoked: revoking is idempotent
    });
  }

  return {
    /** Returns the full key: the only time it is ever available. */
    async create(input: CreateKeyInput, scope?: TxScope): Promise<{ key: string; apiKey: ApiKeyView }> {
      const secret = `sk-${randomBase62(KEY_RANDOM_LENGTH)}`;
      const now = clock.now();
      const row = await inScope(db, scope, async ({ tx }) => {
        // The account row lock serialises concurrent creations, so both caps are exact.
        const [account] = await tx.select().from(accounts).where(eq(accounts.id, input.accountId)).for("update");
        if (!account) throw new DomainError("not_found", `No account ${input.accountId}.`);
        const limits = effectiveLimits(account.limits);
        const [active] = await tx
          .select({ n: count() })
          .from(apiKeys)
          .where(and(eq(apiKeys.accountId, account.id), eq(apiKeys.status, "active")));
        if ((active?.n ?? 0) >= limits.maxActiveKeys) {
          throw new DomainError(
            "max_keys_reached",
            `This account already has ${limits.maxActiveKeys} active keys. Revoke one to create another.`,
          );
        }
        const [recent] = await tx
          .select({ n: count(), oldest: min(apiKeys.createdAt) })
          .from(apiKeys)
          .where(and(eq(apiKeys.accountId, account.id), gt(apiKeys.createdAt, new Date(now.getTime() - HOUR_MS))));
        if ((recent?.n ?? 0) >= limits.keyCreationsPerHour) {
          // A slot frees when the oldest creation of the hour leaves it.
          const retryAfterMs = Math.max(1_000, (recent?.oldest?.getTime() ?? now.getTime()) + HOUR_MS - now.getTime());
          throw new RetryLaterError(
            "rate_limit_exceeded",
            `At most ${limits.keyCreationsPerHour} keys may be created per hour. Try again later.`,
            retryAfterMs,
          );
        }
        const [created] = await tx
          .insert(apiKeys)
          .values({
            id: newId.apiKey(),
            accountId: account.id,
            name: input.name,
            hash: hashApiKey(secret),
            displayPrefix: secret.slice(0, 7),
            displaySuffix: secret.slice(-4),
            allowedModels: input.allowedModels ?? null,
            expiresAt: input.expiresAt ?? null,
            createdAt: now,
          })
          .returning();
        return created!;
      });
      return { key: secret, apiKey: toKeyView(row) };
    },

    revoke,

    /** Changes what the owner sees and may use; with accountId, a key of another account is not found. */
    async update(
      keyId: string,
      accountId: string | undefined,
      changes: { name?: string; allowedModels?: string[] | null },
      scope?: TxScope,
    ): Promise<ApiKeyView> {
      return inScope(db, scope, async ({ tx, afterCommit }) => {
        const [row] = await tx
          .update(apiKeys)
          .set(changes)
          .where(and(eq(apiKeys.id, keyId), equalsIfGiven(apiKeys.accountId, accountId)))
          .returning();
        if (!row) throw new DomainError("not_found", `No key ${keyId}.`);
        // Cached callers carry the key's allowed models: every instance drops its copy once the change has
        // committed, as for a revocation, so the next request anywhere sees the new scope.
        afterCommit(() => bus.publish({ kind: "key", keyId: row.id }));
        return toKeyView(row);
      });
    },

    /**
     * Revokes the one key with this display prefix, as a leaked key is often
     * reported. Display prefixes are short and may repeat: more than one
     * match is refused, naming the keys, so the caller revokes by id.
     */
    revokeByDisplayPrefix(displayPrefix: string, accountId?: string, scope?: TxScope): Promise<ApiKeyView> {
      return inScope(db, scope, async (scope) => {
        const matches = await withDisplayPrefix(scope.tx, displayPrefix, accountId);
        if (matches.length === 0) throw new DomainError("not_found", `No key with display prefix ${displayPrefix}.`, "displayPrefix");
        if (matches.length > 1) {
          const ids = matches.map((key) => key.id).join(", ");
          throw new DomainError("conflict", `${matches.length} keys have display prefix ${displayPrefix} (${ids}); revoke one by keyId.`, "displayPrefix");
        }
        return revoke(matches[0]!.id, accountId, scope);
      });
    },

    async findByDisplayPrefix(displayPrefix: string, accountId?: string): Promise<ApiKeyView[]> {
      return (await withDisplayPrefix(db, displayPrefix, accountId)).map(toKeyView);
    },

    async list(accountId: string): Promise<ApiKeyView[]> {
      const rows = await db.select().from(apiKeys).where(eq(apiKeys.accountId, accountId)).orderBy(apiKeys.createdAt);
      return rows.map(toKeyView);
    },

    /** Finds the key and its account by secret; null when unknown. */
    async findBySecret(secret: string): Promise<{ apiKey: ApiKey; account: Account } | null> {
      const [row] = await db
        .select({ apiKey: apiKeys, account: accounts })
        .from(apiKeys)
        .innerJoin(accounts, eq(accounts.id, apiKeys.accountId))
        .where(eq(apiKeys.hash, hashApiKey(secret)));
      return row ?? null;
    },
  };
}

export type Keys = ReturnType<typeof createKeys>;
