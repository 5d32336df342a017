import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { count, eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Logger } from "../../src/domain/logger.js";
import { accounts, apiKeys, ledgerEntries } from "../../src/domain/schema/index.js";
import { opsClient as opsClientAt } from "../support/ops-client.js";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";

// The ops API refuses hostile input at its edge with BAD_REQUEST naming the
// field, and never hands a client SQL, a stack or an internal name.

const run = promisify(execFile);

const logged: Array<{ obj: object; msg: string | undefined }> = [];
const capturingLogger: Logger = {
  info() {},
  warn() {},
  error: (obj, msg) => logged.push({ obj, msg }),
};

let t: TestPlatform;
beforeAll(async () => {
  t = await startTestPlatform({ logger: capturingLogger });
});
afterAll(() => t.close());
afterEach(() => {
  vi.restoreAllMocks();
  logged.length = 0;
});

const ops = () => opsClientAt(t.url);

/** What a client sees of a failed ops call. */
const failure = (attempt: Promise<unknown>) =>
  attempt.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (error) => ({ message: error.message as string, ...(error.data as { code: string; httpStatus: number; domainCode: string | null; param: string | null }) }),
  );

const REFUSAL = "control characters (U+0000 to U+001F, U+007F) and unpaired surrogates are not allowed";

describe("control characters and unpaired surrogates in ops input", () => {
  it.each<[string, (accountId: string) => Promise<unknown>, string]>([
    ["accounts.create displayName (NUL)", () => ops().accounts.create.mutate({ email: "nul@example.com", displayName: "Ada\u0000" }), "displayName"],
    ["accounts.create email (ESC)", () => ops().accounts.create.mutate({ email: "e\u001b@example.com" }), "email"],
    ["accounts.create plan (DEL)", () => ops().accounts.create.mutate({ email: "plan@example.com", plan: "pro\u007f" as "pro" }), "plan"],
    [
      "accounts.create displayName (unpaired surrogate)",
      () => ops().accounts.create.mutate({ email: "surrogate@example.com", displayName: "Ada \ud83d" }),
      "displayName",
    ],
    [
      "credits.grant memo (newline)",
      (accountId) => ops().credits.grant.mutate({ accountId, amountCents: 5, idempotencyKey: "memo-1", memo: "line\nforged" }),
      "memo",
    ],
    [
      "credits.grant idempotencyKey (NUL)",
      (accountId) => ops().credits.grant.mutate({ accountId, amountCents: 5, idempotencyKey: "k\u0000" }),
      "idempotencyKey",
    ],
    ["keys.create name (tab)", (accountId) => ops().keys.create.mutate({ accountId, name: "prod\tkey" }), "name"],
    [
      "keys.create allowedModels entry (NUL)",
      (accountId) => ops().keys.create.mutate({ accountId, name: "scoped", allowedModels: ["sentx-v1", "x\u0000"] }),
      "allowedModels.1",
    ],
    ["ledger.list before (NUL)", (accountId) => ops().ledger.list.query({ accountId, before: "le_\u0000" }), "before"],
    ["accounts.get accountId (NUL)", () => ops().accounts.get.query({ accountId: "acct_\u0000" }), "accountId"],
  ])("refuses %s with BAD_REQUEST naming the field, and writes nothing", async (_case, attempt, param) => {
    const { accountId } = await t.createCustomer({ balanceCents: 100 });
    const before = await writes(accountId);
    expect(await failure(attempt(accountId))).toMatchObject({
      code: "BAD_REQUEST",
      httpStatus: 400,
      domainCode: "invalid_request_error",
      param,
      message: `Invalid '${param}': ${REFUSAL}.`,
    });
    expect(await writes(accountId)).toEqual(before);
  });

  it("names the field of a schema's refusal too, instead of a dump of issues", async () => {
    expect(await failure(ops().accounts.create.mutate({ email: "long@example.com", displayName: "x".repeat(129) }))).toMatchObject({
      code: "BAD_REQUEST",
      param: "displayName",
      message: expect.stringMatching(/^Invalid 'displayName': .*128/),
    });
    expect(await failure(ops().keys.create.mutate({ accountId: "acct_x", name: "k".repeat(65) }))).toMatchObject({
      code: "BAD_REQUEST",
      param: "name",
      message: "Invalid 'name': name may be at most 64 characters.",
    });
  });

  it("bounds what had no limit: email, allowed model names and their count, a key's expiry (future, before 10000)", async () => {
    const email = `${"a".repeat(250)}@example.com`;
    expect(await failure(ops().accounts.create.mutate({ email }))).toMatchObject({ code: "BAD_REQUEST", param: "email" });
    const tooLongModel = ["m".repeat(257)];
    expect(await failure(ops().keys.create.mutate({ accountId: "acct_x", name: "k", allowedModels: tooLongModel }))).toMatchObject({
      code: "BAD_REQUEST",
      param: "allowedModels.0",
    });
    for (const expiresAt of ["+010000-01-01T00:00:00.000Z", "2001-01-01T00:00:00.000Z"]) {
      expect(await failure(ops().keys.create.mutate({ accountId: "acct_x", name: "k", expiresAt: new Date(expiresAt) })), expiresAt).toMatchObject({
        code: "BAD_REQUEST",
        param: "expiresAt",
      });
    }
    const tooMany = Array.from({ length: 101 }, (_, i) => `model-${i}`);
    expect(await failure(ops().keys.create.mutate({ accountId: "acct_x", name: "k", allowedModels: tooMany }))).toMatchObject({
      code: "BAD_REQUEST",
      param: "allowedModels",
    });
  });
});

describe("unexpected failures", () => {
  const leak = 'Failed query: select "id", "password_hash" from "accounts" where "id" = $1\nparams: acct_secret';

  it("answer a generic INTERNAL_SERVER_ERROR and log the original", async () => {
    vi.spyOn(t.platform.services.accounts, "get").mockRejectedValueOnce(new Error(leak));
    const error = await failure(ops().accounts.get.query({ accountId: "acct_anything" }));
    expect(error).toMatchObject({
      code: "INTERNAL_SERVER_ERROR",
      httpStatus: 500,
      domainCode: null,
      param: null,
      message: "The server had an error while processing your request.",
    });
    expect(JSON.stringify(error)).not.toMatch(/Failed query|password_hash|accounts"|acct_secret|\.ts:\d+/);
    expect(logged).toEqual([{ obj: expect.objectContaining({ err: expect.objectContaining({ message: leak }) }), msg: "ops procedure failed" }]);
  });

  it("reach the CLI as the same generic message", async () => {
    // The server runs in this process, so the spy reaches it; the CLI calls it over HTTP from a process of its own.
    vi.spyOn(t.platform.services.ledger, "verify").mockRejectedValue(new Error(leak));
    const result = await run(process.execPath, ["--import", "tsx", "src/trpc/cli.ts", "ledger.verify"], {
      env: { ...process.env, SENTX_URL: t.url, OPS_TOKEN: TEST_OPS_TOKEN },
    }).catch((e) => e);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("error 500 INTERNAL_SERVER_ERROR: The server had an error while processing your request.");
    expect(result.stderr).not.toMatch(/Failed query|password_hash/);
  });
});

/** Every row an ops call could have written for this account (or created beside it). */
async function writes(accountId: string) {
  const db = t.platform.services.db;
  const [accountRows] = await db.select({ n: count() }).from(accounts);
  const [keyRows] = await db.select({ n: count() }).from(apiKeys).where(eq(apiKeys.accountId, accountId));
  const [entries] = await db.select({ n: count() }).from(ledgerEntries).where(eq(ledgerEntries.accountId, accountId));
  return { accounts: accountRows!.n, keys: keyRows!.n, ledgerEntries: entries!.n };
}
