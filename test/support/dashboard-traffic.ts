import type { TestPlatform } from "./platform.js";
import type { dashboardPlatform } from "./dashboard.js";
import { opsClient } from "./ops-client.js";

// What the dashboard's lists show comes from real use: credit granted by ops,
// a key made with createKey, and chat requests through the official SDK that
// name end users and conversations with SPEC 3's headers.

type Started = ReturnType<typeof dashboardPlatform>;

/** An owner, signed in, with `creditCents` granted by ops and one API key made from the dashboard. */
export async function ownerWithKey(started: Started, { creditCents = 1_000 } = {}) {
  const owner = await started.api.owner();
  await opsClient(started.t.url).credits.grant.mutate({
    accountId: owner.accountId,
    amountCents: creditCents,
    idempotencyKey: `opening-${owner.accountId}`,
    memo: "opening credit",
  });
  const created = await started.api.graphql(`mutation { createKey(name: "traffic") { key apiKey { id } } }`, {}, owner.token);
  const { key, apiKey } = created.data!.createKey as { key: string; apiKey: { id: string } };
  return { ...owner, key, keyId: apiKey.id };
}

export interface Identity {
  user?: string;
  userName?: string;
  session?: string;
}

/** One billed chat request naming `identity`: its x-request-id and the usage the response reported. */
export async function chatAs(t: TestPlatform, key: string, identity: Identity = {}) {
  const headers = {
    ...(identity.user && { "X-User-Id": identity.user }),
    ...(identity.userName && { "X-User-Name": identity.userName }),
    ...(identity.session && { "X-Session-Id": identity.session }),
  };
  const { data, response } = await t
    .openai(key, { defaultHeaders: headers })
    .chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "Hello there" }] })
    .withResponse();
  return { requestId: response.headers.get("x-request-id")!, inputTokens: data.usage!.prompt_tokens, outputTokens: data.usage!.completion_tokens };
}
