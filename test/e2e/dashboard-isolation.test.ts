import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboard, type GraphQLAnswer } from "../support/dashboard.js";
import { chatAs, ownerWithKey } from "../support/dashboard-traffic.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { STRIPE_TEST_ENV, type StripeStandIn, startStripeStandIn } from "../support/stripe-stand-in.js";

// SPEC 11: "an account never sees another's data". Owner B, signed in, tries
// every field and argument that could reach owner A's keys, files, ledger,
// usage, end users, conversations and top-ups: each attempt is answered exactly
// as for an id that does not exist, B's lists never hold A's rows, and A's data
// is the same afterwards.

const started = {} as { t: TestPlatform; api: ReturnType<typeof dashboard> };
let stripe: StripeStandIn;
beforeAll(async () => {
  stripe = await startStripeStandIn();
  started.t = await startTestPlatform({ env: { ...STRIPE_TEST_ENV, STRIPE_API_BASE: stripe.baseUrl } });
  started.api = dashboard(started.t);
});
afterAll(async () => {
  await started.t?.close();
  await stripe?.close();
});

/** What an owner has, and the ids another owner might try. */
interface Seeded {
  token: string;
  keyId: string;
  fileId: string;
  endUserId: string;
  conversationId: string;
  /** The nextCursor of a one-row first page of each list. */
  cursors: Record<(typeof PAGED)[number], string>;
}

const PAGED = ["files", "ledger", "endUsers", "conversations", "topUps"] as const;

/** Every list of the dashboard, with every id it shows. */
const LISTS = `{
  keys { id }
  files{ nodes { id } }
  ledger{ nodes { id request { id } } }
  endUsers{ nodes { id } }
  conversations{ nodes { id endUser { id } } }
  topUps{ nodes { id } }
}`;

/** What A's owner sees of its account: what B must not change. */
const EVERYTHING = `{
  me { id balanceCents heldCents }
  keys { id name status allowedModels }
  files{ nodes { id filename expiresAt } }
  ledger{ nodes { id kind amountCents balanceAfterCents request { id costCents } } }
  endUsers{ nodes { id externalId displayName requestCount inputTokens outputTokens costCents lastSeenAt } }
  conversations{ nodes { id externalId endUser { id } requestCount costCents lastSeenAt } }
  topUps{ nodes { id status amountCents } }
}`;

const USAGE = `query ($filter: UsageFilter, $groupBy: UsageDimension) {
  usage(from: "${new Date(Date.now() - 86_400_000).toISOString()}", to: "${new Date(Date.now() + 86_400_000).toISOString()}", bucket: DAY, timeZone: "UTC", filter: $filter, groupBy: $groupBy) {
    totals { requests costCents } groups { id label totals { requests } }
  }
}`;

function dataOf(answer: GraphQLAnswer): Record<string, any> {
  expect(answer.errors).toBeUndefined();
  return answer.data!;
}

/** An owner with two of everything: keys, files, ledger entries, end users, conversations (from chat traffic) and top-ups. */
async function seed(name: string): Promise<Seeded> {
  const owner = await ownerWithKey(started);
  const { api, t } = started;
  await api.graphql(`mutation { createKey(name: "second") { key } }`, {}, owner.token);
  const client = t.openai(owner.key);
  for (const i of [1, 2]) {
    await client.files.create({ file: await toFile(Buffer.from(`${name}'s notes ${i}\n`), `${name}-${i}.txt`), purpose: "user_data" });
    await chatAs(t, owner.key, { user: `${name}-user-${i}`, userName: `${name} ${i}`, session: `${name}-conversation-${i}` });
    dataOf(await api.graphql(`mutation { createTopUpCheckout(amountCents: 500) { topUp { id } } }`, {}, owner.token));
  }
  const cursors = {} as Seeded["cursors"];
  for (const list of PAGED) {
    const page = dataOf(await api.graphql(`{ ${list}(first: 1) { nextCursor } }`, {}, owner.token))[list];
    expect(page.nextCursor).toEqual(expect.any(String));
    cursors[list] = page.nextCursor;
  }
  const { files, endUsers, conversations } = dataOf(await api.graphql(LISTS, {}, owner.token));
  return {
    token: owner.token,
    keyId: owner.keyId,
    fileId: files.nodes[0].id,
    endUserId: endUsers.nodes[0].id,
    conversationId: conversations.nodes[0].id,
    cursors,
  };
}

/** Every id an answer shows, wherever it sits. */
function idsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(idsIn);
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([field, inner]) => (field === "id" && typeof inner === "string" ? [inner] : idsIn(inner)));
}

/** The same shape of id, naming nothing: what a made-up id gets is what another account's must get. */
const madeUp = (id: string) => id.replace(/[0-9A-Za-z]+$/, (tail) => "0".repeat(tail.length));

const nobodys = (a: Seeded): Seeded => ({
  ...a,
  keyId: madeUp(a.keyId),
  fileId: madeUp(a.fileId),
  endUserId: madeUp(a.endUserId),
  conversationId: madeUp(a.conversationId),
  cursors: Object.fromEntries(PAGED.map((list) => [list, madeUp(a.cursors[list])])) as Seeded["cursors"],
});

/**
 * Each way B might reach A's data: one line per field and argument that takes
 * an id. `refused` is the code B gets; null means B gets an answer, which must
 * show nothing of A's.
 */
const ATTEMPTS: Array<[name: string, operation: string, variables: (a: Seeded) => Record<string, unknown>, refused: string | null]> = [
  ["renameKey", `mutation ($id: ID!) { renameKey(id: $id, name: "mine now") { id } }`, (a) => ({ id: a.keyId }), "not_found"],
  ["revokeKey", `mutation ($id: ID!) { revokeKey(id: $id) { id } }`, (a) => ({ id: a.keyId }), "not_found"],
  ["setKeyAllowedModels", `mutation ($id: ID!) { setKeyAllowedModels(id: $id, allowedModels: ["none"]) { id } }`, (a) => ({ id: a.keyId }), "not_found"],
  ["deleteFile", `mutation ($id: ID!) { deleteFile(id: $id) { id } }`, (a) => ({ id: a.fileId }), "file_not_found"],
  ["conversations by endUserId", `query ($id: ID) { conversations(endUserId: $id) { nodes { id } } }`, (a) => ({ id: a.endUserId }), null],
  ["files after a cursor", `query ($after: String) { files(after: $after) { nodes { id } } }`, (a) => ({ after: a.cursors.files }), "invalid_request_error"],
  ["ledger after a cursor", `query ($after: String) { ledger(after: $after) { nodes { id } } }`, (a) => ({ after: a.cursors.ledger }), "invalid_request_error"],
  ["endUsers after a cursor", `query ($after: String) { endUsers(after: $after) { nodes { id } } }`, (a) => ({ after: a.cursors.endUsers }), "invalid_request_error"],
  ["conversations after a cursor", `query ($after: String) { conversations(after: $after) { nodes { id } } }`, (a) => ({ after: a.cursors.conversations }), "invalid_request_error"],
  ["topUps after a cursor", `query ($after: String) { topUps(after: $after) { nodes { id } } }`, (a) => ({ after: a.cursors.topUps }), "invalid_request_error"],
  ["usage filtered by key", USAGE, (a) => ({ filter: { keyIds: [a.keyId] } }), null],
  ["usage filtered by end user", USAGE, (a) => ({ filter: { endUserIds: [a.endUserId] } }), null],
  ["usage filtered by conversation", USAGE, (a) => ({ filter: { conversationIds: [a.conversationId] } }), null],
  ["usage grouped by key", USAGE, () => ({ groupBy: "KEY" }), null],
  ["usage grouped by end user", USAGE, () => ({ groupBy: "END_USER" }), null],
  ["usage grouped by conversation", USAGE, () => ({ groupBy: "CONVERSATION" }), null],
];

describe("another account's data", () => {
  let a: Seeded;
  let b: Seeded;
  let aIds: string[];
  let aBefore: GraphQLAnswer;
  beforeAll(async () => {
    [a, b] = [await seed("alice"), await seed("bob")];
    aBefore = await started.api.graphql(EVERYTHING, {}, a.token);
    aIds = idsIn(dataOf(aBefore));
  });

  it("never shows in the other account's lists", async () => {
    const bLists = dataOf(await started.api.graphql(LISTS, {}, b.token));
    for (const list of Object.values(bLists)) expect((list.nodes ?? list).length).toBeGreaterThanOrEqual(2);
    expect(idsIn(bLists).filter((id) => aIds.includes(id))).toEqual([]);
  });

  it.each(ATTEMPTS)("cannot be reached through %s", async (_, operation, variables, refused) => {
    const attempt = await started.api.graphql(operation, variables(a), b.token);
    const control = await started.api.graphql(operation, variables(nobodys(a)), b.token);
    if (refused) {
      expect(attempt.data ?? null).toBeNull();
      expect(attempt.errors?.[0]?.extensions?.code).toBe(refused);
    } else {
      expect(idsIn(dataOf(attempt)).filter((id) => aIds.includes(id))).toEqual([]);
    }
    // Word for word what an id naming nothing gets: nothing tells B that A's exists.
    let answer = JSON.stringify(attempt);
    for (const [real, fake] of [a.keyId, a.fileId, a.endUserId, a.conversationId, ...Object.values(a.cursors)].map((id) => [id, madeUp(id)] as const)) {
      answer = answer.replaceAll(real, fake);
    }
    expect(answer).toBe(JSON.stringify(control));
  });

  it("is unchanged by all of it", async () => {
    expect(await started.api.graphql(EVERYTHING, {}, a.token)).toEqual(aBefore);
  });
});
