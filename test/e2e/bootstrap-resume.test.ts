import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureFirstAccount, FIRST_ACCOUNT_EMAIL } from "../../src/domain/bootstrap.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

// The first start makes an account, then its key. A start that died between
// the two must not leave the only account keyless for ever.

let t: TestPlatform;
beforeAll(async () => {
  t = await startTestPlatform();
});
afterAll(() => t.close());

it("gives the first account its key on the next start when a start died before making it, then makes nothing", async () => {
  const { accounts, keys } = t.platform.services;
  const orphan = await accounts.create({ email: FIRST_ACCOUNT_EMAIL, displayName: "Platform owner", initialCreditsCents: 500 });

  const resumed = await ensureFirstAccount({ accounts, keys }, 500);
  expect(resumed?.account.id).toBe(orphan.id);
  expect(resumed?.key).toMatch(/^sk-/);
  const models = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${resumed!.key}` } });
  expect(models.status).toBe(200);

  expect(await ensureFirstAccount({ accounts, keys }, 500)).toBeNull();
  expect(await keys.list(orphan.id)).toHaveLength(1);
});
