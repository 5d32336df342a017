import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { count, eq, sql } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config.js";
import { accounts, apiKeys, auditLog, ledgerEntries } from "../../src/domain/schema/index.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";
import { filesUnder } from "../support/files.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";

// SPEC 12 through the real tRPC endpoint: every procedure, the named ops
// tokens, and the audit log (one row per committed mutation, written in the
// mutation's own transaction, secrets redacted).

const run = promisify(execFile);

const ALICE = "ops_alice_0123456789abcdefghij";
const BOB = "ops_bob_0123456789abcdefghijkl";

// Fails the audit row of any call whose raw input carries `failAudit` (the
// schemas drop unknown fields, so the domain call itself runs as usual): the
// proof that a change and its audit row commit together.
const FAIL_AUDIT_TRIGGER = `
  create function fail_marked_audit() returns trigger language plpgsql as $$
  begin
    if new.input ? 'failAudit' then raise exception 'audit row refused (test)'; end if;
    return new;
  end $$;
  create trigger fail_marked_audit before insert on audit_log for each row execute function fail_marked_audit();`;

let t: TestPlatform;
let filesDir: string;
beforeAll(async () => {
  filesDir = mkdtempSync(join(tmpdir(), "sentx-ops-files-"));
  t = await startTestPlatform({
    env: { OPS_TOKENS: `alice:${ALICE},bob:${BOB}`, FILE_SCANNING: "off", FILES_DIR: filesDir, HOLD_SWEEP_SECONDS: "0.2" },
  });
  await t.platform.services.db.execute(sql.raw(FAIL_AUDIT_TRIGGER));
});
afterAll(async () => {
  await t?.close();
  rmSync(filesDir, { recursive: true, force: true });
});
afterEach(() => void vi.restoreAllMocks());

const ops = () => opsClient(t.url); // OPS_TOKEN: acts as "ops"
const alice = () => opsClient(t.url, ALICE);
const bob = () => opsClient(t.url, BOB);

/** What a client sees of a failed ops call. */
const failure = (attempt: Promise<unknown>) =>
  attempt.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (error) => ({ message: error.message as string, ...(error.data as { code: string; httpStatus: number; domainCode: string | null; param: string | null }) }),
  );

/** Every audit row that names this account, oldest first, read from the table itself. */
async function auditRowsOf(accountId: string) {
  const rows = await t.platform.services.db
    .select()
    .from(auditLog)
    .where(sql`${auditLog.input}->>'accountId' = ${accountId} or ${auditLog.result}->>'accountId' = ${accountId}`)
    .orderBy(auditLog.createdAt, auditLog.id);
  return rows;
}

const balanceOf = async (accountId: string) => (await ops().accounts.get.query({ accountId })).balanceCents;

const ledgerEntriesOf = async (accountId: string) => {
  const [row] = await t.platform.services.db.select({ n: count() }).from(ledgerEntries).where(eq(ledgerEntries.accountId, accountId));
  return row!.n;
};

const hello = { model: "sentx-v1", messages: [{ role: "user" as const, content: "Hello there" }] };

/** One billed chat; its x-request-id once the request is in the log. */
async function chat(key: string, headers: Record<string, string> = {}): Promise<string> {
  const { response } = await t.openai(key).chat.completions.create(hello, { headers }).withResponse();
  const requestId = response.headers.get("x-request-id")!;
  await eventually(
    () => ops().requests.get.query({ requestId }).catch(() => null),
    (request) => request !== null,
  );
  return requestId;
}

describe("named ops tokens (OPS_TOKENS, OPS_TOKEN as 'ops')", () => {
  it("acts under the name of the token presented, and refuses any other token", async () => {
    const { accountId } = await t.createCustomer();
    await alice().accounts.setPlan.mutate({ accountId, plan: "core" });
    await bob().accounts.setPlan.mutate({ accountId, plan: "plus" });
    await ops().accounts.setPlan.mutate({ accountId, plan: "pro" });

    const { data } = await ops().audit.list.query({ accountId });
    expect(data.map((row) => [row.actor, row.procedure, (row.input as { plan: string }).plan])).toEqual([
      ["ops", "accounts.setPlan", "pro"],
      ["bob", "accounts.setPlan", "plus"],
      ["alice", "accounts.setPlan", "core"],
    ]);

    const refused = await failure(opsClient(t.url, `${ALICE}x`).accounts.setPlan.mutate({ accountId, plan: "free" }));
    expect(refused).toMatchObject({ code: "UNAUTHORIZED", httpStatus: 401 });
    expect(await auditRowsOf(accountId)).toHaveLength(3);
  });

  it("parses OPS_TOKENS strictly: name:token pairs, each name and token once, none repeating OPS_TOKEN", () => {
    const env = (opsTokens: string, opsToken?: string) => ({ DATABASE_URL: "postgres://db/sentx", OPS_TOKENS: opsTokens, ...(opsToken && { OPS_TOKEN: opsToken }) });
    expect(loadConfig(env(`alice:${ALICE}, bob:${BOB}`)).opsTokens).toEqual([
      { name: "alice", token: ALICE },
      { name: "bob", token: BOB },
    ]);
    for (const [bad, opsToken] of [
      [ALICE],
      [`alice:short`],
      [`alice:${ALICE},alice:${BOB}`],
      [`alice:${ALICE},bob:${ALICE}`],
      [`bad name:${ALICE}`],
      [`ops:${ALICE}`, TEST_OPS_TOKEN],
      [`alice:${TEST_OPS_TOKEN}`, TEST_OPS_TOKEN],
    ] as Array<[string, string?]>) {
      expect(() => loadConfig(env(bad, opsToken)), bad).toThrow(/OPS_TOKENS/);
    }
  });
});

describe("accounts.list, accounts.find, accounts.setPlan", () => {
  it("lists accounts newest first, page by page, filtered by plan or status", async () => {
    // The one plan no other account of this file is put on, so the list holds only these three.
    const plan = "free";
    const tag = randomUUID().slice(0, 8);
    const created = [];
    for (let i = 0; i < 3; i++) created.push(await ops().accounts.create.mutate({ email: `list-${i}-${tag}@example.com`, plan }));

    const first = await ops().accounts.list.query({ plan, limit: 2 });
    expect(first.data.map((a) => a.id)).toEqual([created[2]!.id, created[1]!.id]);
    expect(first.data[0]).toMatchObject({ availableCents: 0, effectiveLimits: expect.any(Object) });
    expect(first.data[0]).not.toHaveProperty("passwordHash");
    const second = await ops().accounts.list.query({ plan, limit: 2, cursor: first.nextCursor! });
    expect(second).toEqual({ data: [expect.objectContaining({ id: created[0]!.id })], nextCursor: null });

    await ops().accounts.suspend.mutate({ accountId: created[1]!.id });
    expect((await ops().accounts.list.query({ plan, status: "suspended" })).data.map((a) => a.id)).toEqual([created[1]!.id]);
    expect(await failure(ops().accounts.list.query({ cursor: "acct_nosuchcursor" }))).toMatchObject({ httpStatus: 400, param: "cursor" });
  });

  it("finds one account by id or by email (any case), and says which was not found", async () => {
    const email = `find-${randomUUID()}@example.com`;
    const account = await ops().accounts.create.mutate({ email });
    expect((await ops().accounts.find.query({ accountId: account.id })).email).toBe(email);
    expect((await ops().accounts.find.query({ email: email.toUpperCase() })).id).toBe(account.id);

    expect(await failure(ops().accounts.find.query({ email: "nobody@example.com" }))).toMatchObject({ httpStatus: 404, param: "email" });
    expect(await failure(ops().accounts.find.query({}))).toMatchObject({ httpStatus: 400, message: "Give exactly one of accountId and email." });
    expect(await failure(ops().accounts.find.query({ accountId: account.id, email }))).toMatchObject({ httpStatus: 400 });
  });

  it("sets the plan and audits it: actor, procedure, input, result, time; an unknown account changes nothing", async () => {
    const { accountId } = await t.createCustomer();
    const before = Date.now();
    const account = await alice().accounts.setPlan.mutate({ accountId, plan: "plus" });
    expect(account).toMatchObject({ id: accountId, plan: "plus" });

    const [row] = await auditRowsOf(accountId);
    expect(row).toMatchObject({ actor: "alice", procedure: "accounts.setPlan", input: { accountId, plan: "plus" } });
    expect(row!.result).toMatchObject({ id: accountId, plan: "plus", balanceCents: 500 });
    expect(row!.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1_000);

    const missing = "acct_doesnotexist0000";
    expect(await failure(alice().accounts.setPlan.mutate({ accountId: missing, plan: "pro" }))).toMatchObject({ httpStatus: 404, domainCode: "not_found" });
    expect(await auditRowsOf(missing)).toEqual([]);
  });
});

describe("credits.adjust and credits.refund", () => {
  it("adjusts either way through the ledger, once per idempotency key, each call audited", async () => {
    const { accountId } = await t.createCustomer({ balanceCents: 100 });
    const credit = { accountId, amountCents: 40, idempotencyKey: "ticket-1", memo: "outage credit" };
    const first = await alice().credits.adjust.mutate(credit);
    const retried = await alice().credits.adjust.mutate(credit);
    expect(first).toMatchObject({ duplicate: false, entry: { kind: "adjustment", amountCents: 40, balanceAfterCents: 140, memo: "outage credit" } });
    expect(retried).toMatchObject({ duplicate: true, entry: { id: first.entry.id } });

    const debit = await alice().credits.adjust.mutate({ accountId, amountCents: -140, idempotencyKey: "ticket-2", memo: "reversal" });
    expect(debit.entry).toMatchObject({ amountCents: -140, balanceAfterCents: 0 });
    expect(await balanceOf(accountId)).toBe(0);
    expect(await ops().ledger.verify.query({ accountId })).toEqual({ ok: true, mismatches: [] });

    const rows = await auditRowsOf(accountId);
    expect(rows.map((r) => [r.procedure, (r.result as { duplicate: boolean }).duplicate])).toEqual([
      ["credits.adjust", false],
      ["credits.adjust", true],
      ["credits.adjust", false],
    ]);
  });

  it("never takes a balance below zero: the refused debit leaves no entry, no change and no audit row", async () => {
    const { accountId } = await t.createCustomer({ balanceCents: 30 });
    const entries = await ledgerEntriesOf(accountId);
    const debit = { accountId, amountCents: -31, idempotencyKey: "too-much", memo: "oops" };
    expect(await failure(alice().credits.adjust.mutate(debit))).toMatchObject({ httpStatus: 402, domainCode: "insufficient_balance" });
    expect(await failure(alice().credits.refund.mutate(debit))).toMatchObject({ httpStatus: 402, domainCode: "insufficient_balance" });
    expect(await balanceOf(accountId)).toBe(30);
    expect(await ledgerEntriesOf(accountId)).toBe(entries);
    expect(await auditRowsOf(accountId)).toEqual([]);
  });

  it("wants a memo and a non-zero whole amount", async () => {
    const { accountId } = await t.createCustomer();
    const base = { accountId, amountCents: 5, idempotencyKey: "k" };
    expect(await failure(ops().credits.adjust.mutate({ ...base, memo: "  " }))).toMatchObject({ httpStatus: 400, param: "memo" });
    expect(await failure(ops().credits.refund.mutate(base as never))).toMatchObject({ httpStatus: 400, param: "memo" });
    expect(await failure(ops().credits.adjust.mutate({ ...base, memo: "m", amountCents: 0 }))).toMatchObject({ httpStatus: 400, param: "amountCents" });
    expect(await failure(ops().credits.adjust.mutate({ ...base, memo: "m", amountCents: 1.5 }))).toMatchObject({ httpStatus: 400, param: "amountCents" });
  });

  it("refunds a request of the account (not another's), apart from adjustments with the same key", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const other = await t.createCustomer();
    const requestId = await chat(key);
    const charged = (await ops().requests.get.query({ requestId })).costCents;

    const refund = await bob().credits.refund.mutate({ accountId, amountCents: charged, idempotencyKey: "same-key", memo: "bad answer", requestId });
    expect(refund.entry).toMatchObject({ kind: "refund", amountCents: charged, requestId, balanceAfterCents: 100 });
    const adjustment = await bob().credits.adjust.mutate({ accountId, amountCents: 1, idempotencyKey: "same-key", memo: "separate" });
    expect(adjustment.duplicate).toBe(false);

    const foreign = bob().credits.refund.mutate({ accountId: other.accountId, amountCents: 1, idempotencyKey: "x", memo: "m", requestId });
    expect(await failure(foreign)).toMatchObject({ httpStatus: 404, param: "requestId" });
    expect(await auditRowsOf(other.accountId)).toEqual([]);
  });
});

describe("ledger.verify", () => {
  it("reports every account whose balance is not the sum of its ledger, for all accounts or one", async () => {
    const healthy = await t.createCustomer({ balanceCents: 30 });
    const corrupted = await t.createCustomer({ balanceCents: 20 });
    const db = t.platform.services.db;
    // Bypass the ledger, as a bad manual fix would.
    await db.update(accounts).set({ balanceCents: sql`${accounts.balanceCents} + 7` }).where(eq(accounts.id, corrupted.accountId));
    try {
      const mismatch = { accountId: corrupted.accountId, balanceCents: 27, ledgerSumCents: 20 };
      const all = await ops().ledger.verify.query();
      expect(all.ok).toBe(false);
      expect(all.mismatches).toContainEqual(mismatch);
      expect(all.mismatches.map((m) => m.accountId)).not.toContain(healthy.accountId);
      expect(await ops().ledger.verify.query({ accountId: corrupted.accountId })).toEqual({ ok: false, mismatches: [mismatch] });
      expect(await ops().ledger.verify.query({ accountId: healthy.accountId })).toEqual({ ok: true, mismatches: [] });
    } finally {
      await db.update(accounts).set({ balanceCents: 20 }).where(eq(accounts.id, corrupted.accountId));
    }
    expect(await ops().ledger.verify.query({})).toEqual({ ok: true, mismatches: [] });
    expect(await failure(ops().ledger.verify.query({ accountId: "acct_nosuchaccount" }))).toMatchObject({ httpStatus: 404, param: "accountId" });
  });
});

describe("keys.list and keys.revoke, by id or display prefix", () => {
  it("lists an account's keys, or the keys with a display prefix, never the secret", async () => {
    const { accountId, key, keyId } = await t.createCustomer();
    const listed = await ops().keys.list.query({ accountId });
    expect(listed.map((k) => k.id)).toEqual([keyId]);
    expect(JSON.stringify(listed)).not.toContain(key);
    expect((await ops().keys.list.query({ displayPrefix: key.slice(0, 7) })).map((k) => k.id)).toContain(keyId);
    expect(await ops().keys.list.query({ displayPrefix: key.slice(0, 7), accountId })).toEqual([expect.objectContaining({ id: keyId })]);
    expect(await failure(ops().keys.list.query({}))).toMatchObject({ httpStatus: 400 });
    expect(await failure(ops().keys.list.query({ displayPrefix: "sk-toolong" }))).toMatchObject({ httpStatus: 400, param: "displayPrefix" });
  });

  it("revokes by display prefix: the key stops working, and the audit row says how it was named", async () => {
    const { accountId, key, keyId } = await t.createCustomer();
    const revoked = await alice().keys.revoke.mutate({ displayPrefix: key.slice(0, 7), accountId });
    expect(revoked).toMatchObject({ id: keyId, status: "revoked" });
    await expect(t.openai(key).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const [row] = await auditRowsOf(accountId);
    expect(row).toMatchObject({ actor: "alice", procedure: "keys.revoke", input: { displayPrefix: key.slice(0, 7), accountId } });
    expect(row!.result).toMatchObject({ id: keyId, status: "revoked" });
  });

  it("refuses a display prefix that names several keys, naming them, and revokes nothing", async () => {
    const { accountId, key, keyId } = await t.createCustomer();
    const second = await ops().keys.create.mutate({ accountId, name: "twin" });
    await t.platform.services.db.update(apiKeys).set({ displayPrefix: key.slice(0, 7) }).where(eq(apiKeys.id, second.apiKey.id));
    const refusal = await failure(ops().keys.revoke.mutate({ displayPrefix: key.slice(0, 7) }));
    expect(refusal).toMatchObject({ httpStatus: 409, param: "displayPrefix" });
    expect(refusal.message).toContain(keyId);
    expect(refusal.message).toContain(second.apiKey.id);
    expect((await ops().keys.list.query({ accountId })).map((k) => k.status)).toEqual(["active", "active"]);
    expect(await failure(ops().keys.revoke.mutate({ keyId, displayPrefix: key.slice(0, 7) }))).toMatchObject({ httpStatus: 400 });
  });

  it("keeps no secret in the audit log: a created key only in its display form, secret-named fields redacted", async () => {
    const { accountId } = await t.createCustomer();
    const created = await alice().keys.create.mutate({ accountId, name: "audited" });
    const leaked = `leaked key ${created.key} in a memo`;
    await alice().credits.adjust.mutate({
      accountId,
      amountCents: 1,
      idempotencyKey: "memo-with-key",
      memo: leaked,
      // Not in the schema, so dropped before the domain; but the audit keeps the input as sent.
      ...({ password: "hunter2hunter2", opsToken: ALICE } as object),
    } as never);

    const rows = await auditRowsOf(accountId);
    const display = `${created.key.slice(0, 7)}…${created.key.slice(-4)}`;
    expect(JSON.stringify(rows)).not.toContain(created.key);
    expect(JSON.stringify(rows)).not.toContain(ALICE);
    expect(rows[0]!.result).toMatchObject({ key: display, apiKey: { id: created.apiKey.id, displayPrefix: created.key.slice(0, 7) } });
    expect(rows[1]!.input).toMatchObject({ memo: `leaked key ${display} in a memo`, password: "[redacted]", opsToken: "[redacted]" });
  });
});

describe("files.list and files.purge", () => {
  const upload = async (key: string, text: string, filename = "notes.txt") =>
    t.openai(key).files.create({ file: await toFile(Buffer.from(text), filename, { type: "text/plain" }), purpose: "assistants" });

  it("lists an account's files (deleted ones on request), with the length of their text, not the text", async () => {
    const { accountId, key } = await t.createCustomer();
    const kept = await upload(key, `kept ${randomUUID()}`);
    const gone = await upload(key, `deleted ${randomUUID()}`);
    await t.openai(key).files.delete(gone.id);

    const live = await ops().files.list.query({ accountId });
    expect(live.data.map((f) => f.id)).toEqual([kept.id]);
    expect(live.data[0]).toMatchObject({ extractedTextLength: 41, status: "processed" });
    expect(live.data[0]).not.toHaveProperty("extractedText");
    const all = await ops().files.list.query({ accountId, includeDeleted: true, limit: 1 });
    expect(all.data).toEqual([expect.objectContaining({ id: gone.id, status: "deleted" })]);
    expect((await ops().files.list.query({ accountId, includeDeleted: true, cursor: all.nextCursor! })).data.map((f) => f.id)).toEqual([kept.id]);
  });

  it("purges a file for a takedown: its bytes, and every row of any account that refers to them", async () => {
    const content = `takedown ${randomUUID()}`;
    const first = await t.createCustomer();
    const second = await t.createCustomer();
    const target = await upload(first.key, content);
    const copy = await upload(second.key, content, "copy.txt");
    const unrelated = await upload(first.key, `unrelated ${randomUUID()}`);
    const before = await filesUnder(filesDir);

    const purged = await bob().files.purge.mutate({ fileId: target.id });
    expect(purged.files.map((f) => f.id).sort()).toEqual([target.id, copy.id].sort());
    expect(purged.files).toContainEqual({ id: copy.id, accountId: second.accountId, filename: "copy.txt" });
    expect((await filesUnder(filesDir)).filter((path) => path.includes(purged.sha256))).toEqual([]);
    expect(before.filter((path) => path.includes(purged.sha256))).not.toEqual([]);

    for (const [key, id] of [[first.key, target.id], [second.key, copy.id]] as const) {
      await expect(t.openai(key).files.retrieve(id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    }
    expect((await ops().files.list.query({ accountId: first.accountId, includeDeleted: true })).data.map((f) => f.id)).toEqual([unrelated.id]);
    expect((await ops().files.list.query({ accountId: second.accountId, includeDeleted: true })).data).toEqual([]);

    const { data } = await ops().audit.list.query({ actor: "bob", procedure: "files.purge", limit: 1 });
    expect(data[0]).toMatchObject({ input: { fileId: target.id }, result: { sha256: purged.sha256, files: expect.any(Array) } });

    expect(await failure(ops().files.purge.mutate({ fileId: target.id }))).toMatchObject({ httpStatus: 404, domainCode: "file_not_found" });
  });
});

describe("requests, end users and conversations", () => {
  it("looks a request up by its x-request-id, and lists requests by account, key, model, status and time", async () => {
    const { accountId, key, keyId } = await t.createCustomer();
    const second = await ops().keys.create.mutate({ accountId, name: "second" });
    const started = new Date(Date.now() - 1_000);
    const first = await chat(key);
    const other = await chat(second.key);

    expect(await ops().requests.get.query({ requestId: first })).toMatchObject({
      id: first,
      accountId,
      apiKeyId: keyId,
      model: "sentx-v1",
      status: "succeeded",
      httpStatus: 200,
      costCents: expect.any(Number),
    });
    expect(await failure(ops().requests.get.query({ requestId: "req_nosuchrequest" }))).toMatchObject({ httpStatus: 404, param: "requestId" });

    const ids = async (query: Parameters<ReturnType<typeof ops>["requests"]["list"]["query"]>[0]) =>
      (await ops().requests.list.query(query)).data.map((r) => r.id);
    expect(await ids({ accountId })).toEqual([other, first]);
    expect(await ids({ accountId, keyId })).toEqual([first]);
    expect(await ids({ accountId, model: "sentx-v1", status: "succeeded", since: started })).toEqual([other, first]);
    expect(await ids({ accountId, status: "failed" })).toEqual([]);
    expect(await ids({ accountId, until: started })).toEqual([]);
    const page = await ops().requests.list.query({ accountId, limit: 1 });
    expect(await ids({ accountId, limit: 1, cursor: page.nextCursor! })).toEqual([first]);
  });

  it("lists an account's end users and conversations, and looks one up by external id, with its totals", async () => {
    const { accountId, key } = await t.createCustomer();
    const identity = { "X-User-Id": "user-%E2%9C%93", "X-User-Name": "Al%C3%A9x", "X-Session-Id": "conv-1" };
    const requestIds = [await chat(key, identity), await chat(key, identity), await chat(key, { "X-User-Id": "someone-else" })];
    const records = await Promise.all(requestIds.slice(0, 2).map((requestId) => ops().requests.get.query({ requestId })));
    const totals = {
      requestCount: 2,
      inputTokens: records[0]!.inputTokens + records[1]!.inputTokens,
      outputTokens: records[0]!.outputTokens + records[1]!.outputTokens,
      costCents: records[0]!.costCents + records[1]!.costCents,
    };

    const user = await ops().endUsers.get.query({ accountId, externalId: "user-✓" });
    expect(user).toMatchObject({ externalId: "user-✓", displayName: "Aléx", ...totals });
    expect(records[0]!.endUserId).toBe(user.id);
    const users = await ops().endUsers.list.query({ accountId, limit: 1 });
    expect(users.data.map((u) => u.externalId)).toEqual(["someone-else"]);
    expect((await ops().endUsers.list.query({ accountId, cursor: users.nextCursor! })).data.map((u) => u.externalId)).toEqual(["user-✓"]);

    expect(await ops().conversations.get.query({ accountId, externalId: "conv-1" })).toMatchObject({ endUserId: user.id, ...totals });
    expect((await ops().conversations.list.query({ accountId })).data.map((c) => c.externalId)).toEqual(["conv-1"]);

    const other = await t.createCustomer();
    expect(await failure(ops().endUsers.get.query({ accountId: other.accountId, externalId: "user-✓" }))).toMatchObject({
      httpStatus: 404,
      param: "externalId",
    });
    expect(await failure(ops().conversations.get.query({ accountId, externalId: "conv-2" }))).toMatchObject({ httpStatus: 404 });
  });
});

describe("jobs: the in-process scheduler (no Redis)", () => {
  it("reports its queue, lists failed runs with their reasons, and retries one: it leaves the list and its job runs again", async () => {
    const [stats] = await ops().jobs.stats.query();
    expect(stats).toMatchObject({ queue: "in-process", runner: "in-process", counts: { scheduled: expect.any(Number), active: expect.any(Number) } });

    const billing = t.platform.services.billing;
    const sweep = vi.spyOn(billing, "settleAbandonedHolds").mockRejectedValue(new Error("database on fire"));
    const failed = await eventually(
      () => ops().jobs.failed.query({}),
      (runs) => runs.length > 0,
    );
    expect(failed[0]).toMatchObject({ queue: "in-process", job: "settle-abandoned-holds", reason: "database on fire", attemptsMade: 1 });
    sweep.mockRestore();
    const calls = vi.spyOn(billing, "settleAbandonedHolds");

    const { id } = failed[0]!;
    expect(await alice().jobs.retry.mutate({ queue: "in-process", id })).toEqual({ retried: [{ queue: "in-process", id }] });
    expect((await ops().jobs.failed.query({})).map((run) => run.id)).not.toContain(id);
    await eventually(
      async () => calls.mock.calls.length,
      (n) => n > 0,
    );
    const { data } = await ops().audit.list.query({ procedure: "jobs.retry", limit: 1 });
    expect(data[0]).toMatchObject({ actor: "alice", input: { queue: "in-process", id }, result: { retried: [{ queue: "in-process", id }] } });

    expect(await failure(ops().jobs.retry.mutate({ queue: "in-process", id }))).toMatchObject({ httpStatus: 404, param: "id" });
    expect(await failure(ops().jobs.retry.mutate({ id }))).toMatchObject({ httpStatus: 400, param: "queue" });
    expect(await failure(ops().jobs.failed.query({ queue: "nope" }))).toMatchObject({ httpStatus: 404, param: "queue" });
    // Retrying everything failed: whatever is left, then nothing.
    await ops().jobs.retry.mutate({});
    expect(await ops().jobs.retry.mutate({})).toEqual({ retried: [] });
  });
});

describe("jobs: BullMQ (with Redis)", () => {
  it("reports the shared queue beside the in-process one, lists its failed runs and retries one", async () => {
    const queued = await startTestPlatform({
      env: { REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: `sentx-ops-${randomUUID().slice(0, 8)}:`, HOLD_SWEEP_SECONDS: "0.2" },
    });
    try {
      const client = opsClient(queued.url);
      expect((await client.jobs.stats.query()).map((q) => [q.queue, q.runner])).toEqual([
        ["recurring", "bullmq"],
        ["in-process", "in-process"],
        ["one-off", "bullmq"],
      ]);

      const sweep = vi.spyOn(queued.platform.services.billing, "settleAbandonedHolds").mockRejectedValue(new Error("disk full"));
      const failed = await eventually(
        () => client.jobs.failed.query({ queue: "recurring" }),
        (runs) => runs.length > 0,
        10_000,
      );
      expect(failed[0]).toMatchObject({ queue: "recurring", job: "settle-abandoned-holds", reason: "disk full", failedAt: expect.any(String) });
      sweep.mockRestore();

      const { id } = failed[0]!;
      expect(await client.jobs.retry.mutate({ queue: "recurring", id })).toEqual({ retried: [{ queue: "recurring", id }] });
      const after = await eventually(
        () => client.jobs.failed.query({ queue: "recurring" }),
        (runs) => !runs.some((run) => run.id === id),
        10_000,
      );
      expect(after.map((run) => run.id)).not.toContain(id);
      expect(await failure(client.jobs.retry.mutate({ queue: "recurring", id: "no-such-run" }))).toMatchObject({ httpStatus: 404, param: "id" });
    } finally {
      await queued.close();
    }
  });
});

describe("the audit log", () => {
  it("commits a change only with its audit row: when the row cannot be written, nothing changed", async () => {
    const { accountId, key, keyId } = await t.createCustomer({ balanceCents: 50 });
    const marked = { failAudit: true } as object;
    const attempts = [
      () => ops().accounts.setPlan.mutate({ accountId, plan: "enterprise", ...marked }),
      () => ops().credits.adjust.mutate({ accountId, amountCents: 10, idempotencyKey: "doomed", memo: "never", ...marked }),
      () => ops().keys.revoke.mutate({ keyId, ...marked }),
      () => ops().accounts.suspend.mutate({ accountId, ...marked }),
    ];
    for (const attempt of attempts) expect(await failure(attempt())).toMatchObject({ code: "INTERNAL_SERVER_ERROR", httpStatus: 500 });

    const account = await ops().accounts.get.query({ accountId });
    expect(account).toMatchObject({ plan: "payg", status: "active", balanceCents: 50 });
    expect(await ledgerEntriesOf(accountId)).toBe(1);
    expect((await ops().keys.list.query({ accountId }))[0]).toMatchObject({ status: "active" });
    expect((await t.openai(key).models.list()).data.length).toBeGreaterThan(0);
    expect(await auditRowsOf(accountId)).toEqual([]);
  });

  it("writes no row for a query", async () => {
    const [before] = await t.platform.services.db.select({ n: count() }).from(auditLog);
    const { accountId } = await t.createCustomer();
    await ops().accounts.get.query({ accountId });
    await ops().keys.list.query({ accountId });
    await ops().audit.list.query();
    await ops().jobs.stats.query();
    const [after] = await t.platform.services.db.select({ n: count() }).from(auditLog);
    expect(after!.n).toBe(before!.n);
  });

  it("lists rows newest first, by actor, procedure, account and time, page by page", async () => {
    const { accountId } = await t.createCustomer();
    const since = new Date();
    await bob().accounts.setPlan.mutate({ accountId, plan: "core" });
    await bob().accounts.setLimits.mutate({ accountId, limits: { requestsPerMinute: 10 } });
    await alice().accounts.suspend.mutate({ accountId });

    const page = await ops().audit.list.query({ accountId, limit: 2 });
    expect(page.data.map((r) => r.procedure)).toEqual(["accounts.suspend", "accounts.setLimits"]);
    const rest = await ops().audit.list.query({ accountId, limit: 2, cursor: page.nextCursor! });
    expect(rest).toEqual({ data: [expect.objectContaining({ procedure: "accounts.setPlan" })], nextCursor: null });

    expect((await ops().audit.list.query({ accountId, actor: "bob" })).data).toHaveLength(2);
    expect((await ops().audit.list.query({ accountId, procedure: "accounts.suspend" })).data).toHaveLength(1);
    expect((await ops().audit.list.query({ accountId, since })).data).toHaveLength(3);
    expect((await ops().audit.list.query({ accountId, until: since })).data).toHaveLength(0);
    const created = await ops().accounts.create.mutate({ email: `audited-${randomUUID()}@example.com` });
    expect((await ops().audit.list.query({ accountId: created.id })).data.map((r) => r.procedure)).toEqual(["accounts.create"]);
  });

  it("names the actor of a CLI call by the token it was given", async () => {
    const { accountId } = await t.createCustomer();
    const cli = (...args: string[]) =>
      run(process.execPath, ["--import", "tsx", "src/trpc/cli.ts", ...args], { env: { ...process.env, SENTX_URL: t.url, OPS_TOKEN: BOB } });
    const { stdout } = await cli("accounts.setPlan", JSON.stringify({ accountId, plan: "teams" }));
    expect(JSON.parse(stdout)).toMatchObject({ id: accountId, plan: "teams" });
    expect((await auditRowsOf(accountId)).map((r) => [r.actor, r.procedure])).toEqual([["bob", "accounts.setPlan"]]);
    expect(JSON.parse((await cli("jobs.stats")).stdout)[0]).toMatchObject({ queue: "in-process" });
  });
});
