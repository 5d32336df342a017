import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { TRPCClientError } from "@trpc/client";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { domainCode, opsClient as opsClientAt } from "../support/ops-client.js";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";

const run = promisify(execFile);

let t: TestPlatform;
beforeAll(async () => {
  t = await startTestPlatform();
});
afterAll(() => t.close());

const opsClient = (token?: string) => opsClientAt(t.url, token);

describe("ops API over tRPC", () => {
  it("refuses a missing or wrong ops token", async () => {
    const error = await opsClient("ops_wrong_token_0123456789abcdef").ledger.verify.query().catch((e) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(error.data.code).toBe("UNAUTHORIZED");
    expect(error.data.httpStatus).toBe(401);
  });

  it("creates an account with opening credits, grants idempotently, and keeps the ledger balanced", async () => {
    const ops = opsClient();
    const account = await ops.accounts.create.mutate({ email: "Grace@Example.com", initialCreditsCents: 250 });
    expect(account).toMatchObject({ email: "grace@example.com", balanceCents: 250, heldCents: 0, availableCents: 250, status: "active" });
    expect(account).not.toHaveProperty("passwordHash");

    const grant = { accountId: account.id, amountCents: 125, idempotencyKey: "invoice-1", memo: "goodwill" };
    const first = await ops.credits.grant.mutate(grant);
    const retried = await ops.credits.grant.mutate(grant);
    expect(first.duplicate).toBe(false);
    expect(retried.duplicate).toBe(true);
    expect(retried.entry.id).toBe(first.entry.id);
    expect((await ops.accounts.get.query({ accountId: account.id })).balanceCents).toBe(375);

    const entries = await ops.ledger.list.query({ accountId: account.id });
    expect(entries.map((e) => e.amountCents).sort()).toEqual([125, 250]);
    expect(await ops.ledger.verify.query()).toEqual({ ok: true, mismatches: [] });

    const duplicate = await ops.accounts.create.mutate({ email: "grace@example.com" }).catch((e) => e);
    expect(duplicate.data.httpStatus).toBe(409);
  });

  it("rejects bad input with BAD_REQUEST, and an unknown account with NOT_FOUND", async () => {
    const ops = opsClient();
    const bad = await ops.credits.grant.mutate({ accountId: "acct_x", amountCents: -5, idempotencyKey: "k" }).catch((e) => e);
    expect(bad.data.code).toBe("BAD_REQUEST");
    const missing = await ops.accounts.get.query({ accountId: "acct_doesnotexist" }).catch((e) => e);
    expect(missing.data.code).toBe("NOT_FOUND");
    expect(domainCode(missing)).toBe("not_found");
  });

  it("creates a key that works once shown, never shows it again, and revokes it", async () => {
    const ops = opsClient();
    const account = await ops.accounts.create.mutate({ email: "keys@example.com", initialCreditsCents: 100 });
    const created = await ops.keys.create.mutate({ accountId: account.id, name: "production" });
    expect(created.key).toMatch(/^sk-[0-9A-Za-z]{32,}$/);
    expect(created.apiKey).toMatchObject({ name: "production", status: "active", displayPrefix: created.key.slice(0, 7) });
    expect(JSON.stringify(await ops.keys.list.query({ accountId: account.id }))).not.toContain(created.key);

    const client = t.openai(created.key);
    expect((await client.models.list()).data.length).toBeGreaterThan(0);

    await ops.keys.revoke.mutate({ keyId: created.apiKey.id });
    await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("suspends and resumes an account: its keys get 403 account_suspended meanwhile", async () => {
    const ops = opsClient();
    const { accountId, key } = await t.createCustomer();
    await ops.accounts.suspend.mutate({ accountId });
    const error = await t.openai(key).models.list().catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(error.code).toBe("account_suspended");
    await ops.accounts.resume.mutate({ accountId });
    expect((await t.openai(key).models.list()).data.length).toBeGreaterThan(0);
  });

  it("is driven by the CLI, which prints JSON", async () => {
    const env = { ...process.env, SENTX_URL: t.url, OPS_TOKEN: TEST_OPS_TOKEN };
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "src/trpc/cli.ts", "accounts.create", '{"email":"cli@example.com","initialCreditsCents":42}'],
      { env },
    );
    const account = JSON.parse(stdout);
    expect(account).toMatchObject({ email: "cli@example.com", balanceCents: 42 });

    const failure = await run(process.execPath, ["--import", "tsx", "src/trpc/cli.ts", "accounts.get", '{"accountId":"acct_nope"}'], {
      env,
    }).catch((e) => e);
    expect(failure.code).toBe(1);
    expect(failure.stderr.trim()).toBe("error 404 NOT_FOUND not_found: No account acct_nope.");
  });
});
