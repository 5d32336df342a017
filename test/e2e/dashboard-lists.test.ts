import { toFile } from "openai";
import type postgres from "postgres";
import { describe, expect, it } from "vitest";
import { refusal } from "../support/api-errors.js";
import { dashboardPlatform, errorCode, type GraphQLAnswer } from "../support/dashboard.js";
import { chatAs, type Identity, ownerWithKey } from "../support/dashboard-traffic.js";
import { fileNotFound } from "../support/files.js";

// SPEC 11: the dashboard's lists (files, ledger, end users, conversations) of
// the signed-in account, in pages, with what each row points to loaded for the
// whole page at once; and deleting a file.

const started = dashboardPlatform();

const FILE_FIELDS = "id filename bytes purpose mimeType scanStatus status createdAt expiresAt";
const FILES = `query ($first: Int, $after: String) { files(first: $first, after: $after) { nodes { ${FILE_FIELDS} } nextCursor } }`;
const DELETE_FILE = `mutation ($id: ID!) { deleteFile(id: $id) { id deleted } }`;
const REQUEST_FIELDS = "id model endpoint inputTokens outputTokens costCents status createdAt";
const LEDGER = `query ($first: Int, $after: String, $kind: LedgerEntryKind) {
  ledger(first: $first, after: $after, kind: $kind) { nodes { id kind amountCents balanceAfterCents memo createdAt request { ${REQUEST_FIELDS} } } nextCursor }
}`;
const TOTALS = "requestCount inputTokens outputTokens costCents firstSeenAt lastSeenAt";
const END_USERS = `query ($first: Int, $after: String) { endUsers(first: $first, after: $after) { nodes { id externalId displayName ${TOTALS} } nextCursor } }`;
const CONVERSATIONS = `query ($first: Int, $after: String, $endUserId: ID) {
  conversations(first: $first, after: $after, endUserId: $endUserId) { nodes { id externalId endUser { id externalId } ${TOTALS} } nextCursor }
}`;

type Node = Record<string, any>;

/** The data of an answer that must have no errors. */
function dataOf(answer: GraphQLAnswer): Record<string, any> {
  expect(answer.errors).toBeUndefined();
  return answer.data!;
}

/** Every node of a list, page after page of `first`, and how many pages it took. */
async function everyPage(query: string, field: string, token: string, first: number, variables: Record<string, unknown> = {}) {
  const nodes: Node[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const page: { nodes: Node[]; nextCursor: string | null } = dataOf(await started.api.graphql(query, { ...variables, first, after }, token))[field];
    nodes.push(...page.nodes);
    after = page.nextCursor;
    pages++;
  } while (after !== null && pages < 100);
  return { nodes, pages };
}

const ids = (nodes: Node[]) => nodes.map((node) => node.id as string);

describe("files", () => {
  it("lists uploads newest first in pages, without duplicates or gaps, as the Files API shows them", async () => {
    const owner = await ownerWithKey(started);
    const client = started.t.openai(owner.key);
    const uploaded = [];
    for (let i = 0; i < 5; i++) uploaded.push(await client.files.create({ file: await toFile(Buffer.from(`notes ${i}\n`), `notes-${i}.txt`), purpose: "user_data" }));

    const { nodes, pages } = await everyPage(FILES, "files", owner.token, 2);
    expect(pages).toBe(3);
    expect(ids(nodes)).toEqual(uploaded.map((file) => file.id).reverse());
    const newest = uploaded.at(-1)!;
    expect(nodes[0]).toEqual({
      id: newest.id,
      filename: "notes-4.txt",
      bytes: newest.bytes,
      purpose: "user_data",
      mimeType: "text/plain",
      scanStatus: "scanned",
      status: "processed",
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
    });
    expect(Math.floor(Date.parse(nodes[0]!.createdAt) / 1000)).toBe(newest.created_at);
    expect(Math.floor(Date.parse(nodes[0]!.expiresAt) / 1000)).toBe(newest.expires_at);
  });

  it("deletes a file: gone from files and from GET /v1/files/{id}; deleting it again is not found", async () => {
    const owner = await ownerWithKey(started);
    const client = started.t.openai(owner.key);
    const [kept, doomed] = [
      await client.files.create({ file: await toFile(Buffer.from("keep me\n"), "keep.txt"), purpose: "user_data" }),
      await client.files.create({ file: await toFile(Buffer.from("delete me\n"), "doomed.txt"), purpose: "user_data" }),
    ];

    expect(dataOf(await started.api.graphql(DELETE_FILE, { id: doomed.id }, owner.token))).toEqual({ deleteFile: { id: doomed.id, deleted: true } });
    expect(ids(dataOf(await started.api.graphql(FILES, {}, owner.token)).files.nodes)).toEqual([kept.id]);
    expect(await refusal(client.files.retrieve(doomed.id))).toMatchObject(fileNotFound);

    for (const id of [doomed.id, "file-000000000000000000000000", "not a file id"]) {
      expect(errorCode(await started.api.graphql(DELETE_FILE, { id }, owner.token))).toBe("file_not_found");
    }
  });
});

describe("ledger", () => {
  it("pages newest first, filters by kind, and shows each usage entry's request", async () => {
    const owner = await ownerWithKey(started, { creditCents: 1_000 });
    const chats = [];
    for (let i = 0; i < 3; i++) chats.push(await chatAs(started.t, owner.key));

    const { nodes, pages } = await everyPage(LEDGER, "ledger", owner.token, 2);
    expect(pages).toBe(2);
    expect(new Set(ids(nodes)).size).toBe(4);
    expect(nodes.map((entry) => entry.kind)).toEqual(["USAGE", "USAGE", "USAGE", "GRANT"]);
    const balance = dataOf(await started.api.graphql("{ me { balanceCents } }", {}, owner.token)).me.balanceCents;
    expect(nodes[0]!.balanceAfterCents).toBe(balance);
    expect(nodes.reduce((sum, entry) => sum + entry.amountCents, 0)).toBe(balance);
    expect(nodes[3]).toMatchObject({ amountCents: 1_000, balanceAfterCents: 1_000, memo: "opening credit", request: null });

    const usage = dataOf(await started.api.graphql(LEDGER, { kind: "USAGE" }, owner.token)).ledger;
    expect(usage.nextCursor).toBeNull();
    expect(usage.nodes.map((entry: Node) => entry.request.id)).toEqual(chats.map((chat) => chat.requestId).reverse());
    for (const [i, entry] of usage.nodes.entries()) {
      const chat = chats[chats.length - 1 - i]!;
      expect(entry.request).toEqual({
        id: chat.requestId,
        model: "sentx-v1",
        endpoint: "/v1/chat/completions",
        inputTokens: chat.inputTokens,
        outputTokens: chat.outputTokens,
        costCents: -entry.amountCents,
        status: "succeeded",
        createdAt: expect.any(String),
      });
    }
    expect(ids(dataOf(await started.api.graphql(LEDGER, { kind: "GRANT" }, owner.token)).ledger.nodes)).toEqual([nodes[3]!.id]);
    expect(dataOf(await started.api.graphql(LEDGER, { kind: "TOPUP" }, owner.token)).ledger).toEqual({ nodes: [], nextCursor: null });
  });
});

describe("end users and conversations", () => {
  it("show the running totals of the requests that named them, in pages, and conversations by end user", async () => {
    const owner = await ownerWithKey(started);
    const traffic = [
      { user: "alice", userName: "Alice", session: "trip-planning" },
      { user: "alice", session: "trip-planning" },
      { user: "alice", session: "recipes" },
      { user: "bob", userName: "Bob", session: "homework" },
      { session: "anonymous-chat" },
    ];
    const sent: Array<{ identity: Identity } & Awaited<ReturnType<typeof chatAs>>> = [];
    for (const identity of traffic) sent.push({ identity, ...(await chatAs(started.t, owner.key, identity)) });
    const usage = dataOf(await started.api.graphql(LEDGER, { kind: "USAGE", first: 10 }, owner.token)).ledger.nodes as Node[];
    const costOf = new Map(usage.map((entry) => [entry.request.id as string, -entry.amountCents as number]));
    const expectedTotals = (requests: typeof sent) => ({
      requestCount: requests.length,
      inputTokens: requests.reduce((sum, r) => sum + r.inputTokens, 0),
      outputTokens: requests.reduce((sum, r) => sum + r.outputTokens, 0),
      costCents: requests.reduce((sum, r) => sum + costOf.get(r.requestId)!, 0),
    });

    const endUsers = await everyPage(END_USERS, "endUsers", owner.token, 1);
    expect(endUsers.pages).toBe(2);
    expect(endUsers.nodes.map((u) => u.externalId)).toEqual(["bob", "alice"]);
    const alice = endUsers.nodes[1]!;
    expect(alice).toMatchObject({ displayName: "Alice", ...expectedTotals(sent.filter((r) => r.identity.user === "alice")) });
    expect(endUsers.nodes[0]).toMatchObject({ displayName: "Bob", ...expectedTotals(sent.filter((r) => r.identity.user === "bob")) });
    expect(Date.parse(alice.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(alice.firstSeenAt));

    const conversations = await everyPage(CONVERSATIONS, "conversations", owner.token, 2);
    expect(conversations.pages).toBe(2);
    expect(conversations.nodes.map((c) => [c.externalId, c.endUser?.externalId ?? null])).toEqual([
      ["anonymous-chat", null],
      ["homework", "bob"],
      ["recipes", "alice"],
      ["trip-planning", "alice"],
    ]);
    for (const conversation of conversations.nodes) {
      expect(conversation).toMatchObject(expectedTotals(sent.filter((r) => r.identity.session === conversation.externalId)));
    }

    const ofAlice = await everyPage(CONVERSATIONS, "conversations", owner.token, 1, { endUserId: alice.id });
    expect(ofAlice.nodes.map((c) => c.externalId)).toEqual(["recipes", "trip-planning"]);
    expect(ofAlice.nodes.every((c) => c.endUser.id === alice.id)).toBe(true);
  });
});

describe("refusals", () => {
  const lists = { files: FILES, ledger: LEDGER, endUsers: END_USERS, conversations: CONVERSATIONS };

  it("refuses a page size outside 1 to 100, naming `first`", async () => {
    const owner = await started.api.owner();
    for (const query of Object.values(lists)) {
      for (const first of [0, 101, -1]) {
        const answer = await started.api.graphql(query, { first }, owner.token);
        expect(errorCode(answer)).toBe("invalid_request_error");
        expect(answer.errors![0]!.extensions!.param).toBe("first");
      }
      expect(dataOf(await started.api.graphql(query, { first: 100 }, owner.token))).toBeTruthy();
    }
  });

  it("refuses a cursor that is no page's, naming `after`", async () => {
    const owner = await started.api.owner();
    for (const query of Object.values(lists)) {
      for (const after of ["le_00000000000000000000", "file-000000000000000000000000", "conv_x", "not a cursor", "x".repeat(65), "le_\u0000"]) {
        const answer = await started.api.graphql(query, { after }, owner.token);
        expect(errorCode(answer)).toBe("invalid_request_error");
        expect(answer.errors![0]!.extensions!.param).toBe("after");
      }
    }
  });

  it("refuses an endUserId that is no id, and finds no conversations for one that names no end user", async () => {
    const owner = await started.api.owner();
    for (const endUserId of ["eu_\u0000", "", "x".repeat(65)]) {
      const answer = await started.api.graphql(CONVERSATIONS, { endUserId }, owner.token);
      expect(errorCode(answer)).toBe("invalid_request_error");
      expect(answer.errors![0]!.extensions!.param).toBe("endUserId");
    }
    const none = await started.api.graphql(CONVERSATIONS, { endUserId: "eu_00000000000000000000" }, owner.token);
    expect(dataOf(none)).toEqual({ conversations: { nodes: [], nextCursor: null } });
  });

  it("refuses an unknown ledger kind before running anything", async () => {
    const owner = await started.api.owner();
    const answer = await started.api.graphql(LEDGER, { kind: "THEFT" }, owner.token);
    expect(answer.data).toBeUndefined();
    expect(answer.errors![0]!.message).toContain("LedgerEntryKind");
  });

  it("needs a session for every list and for deleteFile", async () => {
    for (const query of Object.values(lists)) expect(errorCode(await started.api.graphql(query))).toBe("unauthorized");
    expect(errorCode(await started.api.graphql(DELETE_FILE, { id: "file-000000000000000000000000" }))).toBe("unauthorized");
  });
});

/**
 * Every statement the platform sends PostgreSQL while `run` runs, as
 * postgres.js's own debug hook sees it on the platform's pool.
 */
async function statementsDuring(run: () => Promise<unknown>): Promise<string[]> {
  const pool = (started.t.platform.services.db as unknown as { $client: postgres.Sql }).$client;
  const statements: string[] = [];
  pool.options.debug = (_connection, statement) => statements.push(statement);
  try {
    await run();
  } finally {
    pool.options.debug = false;
  }
  return statements;
}

const touching = (table: string, statements: string[]) => statements.filter((s) => s.includes(`"${table}"`)).length;

// The platform's scheduled jobs (key last-used flush, hold sweeper, file retention) may run meanwhile: not the query's.
const BACKGROUND = /"(api_keys|holds|files|blobs)"/;

describe("batching", () => {
  it("loads a page's end users and requests with one query each, however long the page", async () => {
    const owner = await ownerWithKey(started);
    const rows = 24;
    for (let i = 0; i < rows; i++) await chatAs(started.t, owner.key, { user: `user-${i}`, session: `conversation-${i}` });

    const cost = async (query: string, first: number) => {
      const statements = await statementsDuring(async () => dataOf(await started.api.graphql(query, { first }, owner.token)));
      return { all: statements.filter((s) => !BACKGROUND.test(s)).length, endUsers: touching("end_users", statements), requests: touching("requests", statements) };
    };
    const withEndUsers = `query ($first: Int) { conversations(first: $first) { nodes { externalId endUser { externalId displayName } } } }`;
    const withRequests = `query ($first: Int) { ledger(first: $first, kind: USAGE) { nodes { amountCents request { model inputTokens } } } }`;

    const [fewConversations, manyConversations] = [await cost(withEndUsers, 2), await cost(withEndUsers, rows)];
    expect(manyConversations).toEqual({ all: fewConversations.all, endUsers: 1, requests: 0 });
    const [fewEntries, manyEntries] = [await cost(withRequests, 2), await cost(withRequests, rows)];
    expect(manyEntries).toEqual({ all: fewEntries.all, endUsers: 0, requests: 1 });

    const page = dataOf(await started.api.graphql(withEndUsers, { first: rows }, owner.token)).conversations.nodes as Node[];
    expect(page).toHaveLength(rows);
    expect(page.every((c) => c.endUser.externalId === c.externalId.replace("conversation", "user"))).toBe(true);
  });
});
