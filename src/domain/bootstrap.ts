import type { Accounts } from "./accounts.js";
import type { Keys } from "./keys.js";
import type { Account } from "./schema/index.js";

export const FIRST_ACCOUNT_EMAIL = "owner@sentx.local";

/**
 * SPEC 13: on the very first start of an embedded platform, one account with
 * credits and one key, so the platform answers at once. Later starts find the
 * account and make nothing: the key is shown once, like every key. A start
 * that died between making the account and its key makes the key next time,
 * rather than leaving the only account without one.
 */
export async function ensureFirstAccount(
  { accounts, keys }: { accounts: Accounts; keys: Keys },
  creditsCents: number,
): Promise<{ account: Account; key: string } | null> {
  const existing = await accounts.count();
  if (existing > 1) return null;
  const account =
    existing === 0
      ? await accounts.create({ email: FIRST_ACCOUNT_EMAIL, displayName: "Platform owner", initialCreditsCents: creditsCents })
      : await accounts.findByEmail(FIRST_ACCOUNT_EMAIL).catch(() => null);
  if (!account || (await keys.list(account.id)).length > 0) return null;
  const { key } = await keys.create({ accountId: account.id, name: "default" });
  return { account, key };
}
