import type { Clock } from "./clock.js";
import { retryOnConnectionLoss } from "./db.js";
import { DomainError, isDomainError } from "./errors.js";
import { isApiKeyFormat, type Keys } from "./keys.js";
import type { KeyUsageRecorder } from "./key-usage.js";
import type { AuthFailureLimits } from "./limits/auth-failure-limits.js";
import type { Account, ApiKey } from "./schema/index.js";

/** Who is calling the API: the key and the account it belongs to. */
export interface ApiCaller {
  account: Account;
  apiKey: ApiKey;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

const invalidKey = (message: string) => new DomainError("invalid_api_key", message);

/** Shows a key the way OpenAI does in errors, without echoing the secret. */
const maskKey = (key: string) => (key.length > 12 ? `${key.slice(0, 6)}…${key.slice(-4)}` : "***");

export interface ApiKeyAuthDeps {
  /** The key store, or a cache in front of it. */
  callers: Pick<Keys, "findBySecret">;
  clock: Clock;
  keyUsage: KeyUsageRecorder;
  failures: AuthFailureLimits;
}

export function createApiKeyAuth({ callers, clock, keyUsage, failures }: ApiKeyAuthDeps) {
  async function identify(authorization: string | undefined): Promise<ApiCaller> {
    if (!authorization?.trim()) {
      throw invalidKey(
        "You didn't provide an API key. Send it in the Authorization header as `Authorization: Bearer sk-…`.",
      );
    }
    const secret = BEARER.exec(authorization)?.[1];
    if (!secret || !isApiKeyFormat(secret)) {
      throw invalidKey("Malformed API key. Keys look like `sk-` followed by at least 32 letters and digits.");
    }
    // A read: safe to try once more on a new connection if the first was lost.
    const found = await retryOnConnectionLoss(() => callers.findBySecret(secret));
    if (!found) throw invalidKey(`Incorrect API key provided: ${maskKey(secret)}.`);
    const { apiKey, account } = found;
    if (apiKey.status !== "active") throw invalidKey("This API key has been revoked.");
    if (apiKey.expiresAt && apiKey.expiresAt <= clock.now()) throw invalidKey("This API key has expired.");
    if (account.status === "suspended") {
      throw new DomainError("account_suspended", "This account is suspended. Contact SentX support.");
    }
    keyUsage.touch(apiKey.id);
    return found;
  }

  return {
    /** SPEC 4; an address that keeps presenting bad keys is refused (429) before they are looked up. */
    async authenticate(authorization: string | undefined, clientAddress: string): Promise<ApiCaller> {
      failures.refuseIfOverLimit(clientAddress);
      try {
        return await identify(authorization);
      } catch (error) {
        if (isDomainError(error) && error.code === "invalid_api_key") await failures.countFailure(clientAddress);
        throw error;
      }
    },
  };
}

export type ApiKeyAuth = ReturnType<typeof createApiKeyAuth>;
