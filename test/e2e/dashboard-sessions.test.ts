import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { eq } from "drizzle-orm";
import { auditLog, dashboardSessions } from "../../src/domain/schema/index.js";
import { createSessions } from "../../src/domain/sessions.js";
import { offsetClock } from "../support/clock.js";
import { dashboard, dashboardPlatform, errorCode } from "../support/dashboard.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

const started = dashboardPlatform();

interface Sent {
  status: number;
  body: any;
  setCookies: string[];
}

/** A request as a browser sends it: the cookie it was given, and headers a page may add. */
async function post(url: string, query: string, { cookie, headers = {}, variables = {} }: { cookie?: string; headers?: Record<string, string>; variables?: object } = {}): Promise<Sent> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(cookie && { cookie }), ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: await res.json(), setCookies: res.headers.getSetCookie() };
}

const SIGN_IN = `mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { token csrfToken expiresAt } }`;
const CREATE_KEY = `mutation { createKey(name: "from the browser") { apiKey { id } } }`;
const KEY_COUNT = `{ keys { id } }`;

/** An owner signed in the way a browser is: the session in a cookie, and the page holding the CSRF token. */
async function browserOwner() {
  const { email, password } = await started.api.owner();
  const signedIn = await post(started.t.url, SIGN_IN, { variables: { email, password } });
  const [setCookie] = signedIn.setCookies;
  const cookie = setCookie!.split(";")[0]!;
  return { setCookie: setCookie!, cookie, token: signedIn.body.data.signIn.token as string, csrfToken: signedIn.body.data.signIn.csrfToken as string };
}

describe("cookie sessions", () => {
  it("gives the session as an HttpOnly, Secure, SameSite=Lax cookie for /graphql that ends with the session", async () => {
    const { setCookie, token } = await browserOwner();
    expect(setCookie).toMatch(new RegExp(`^sentx_session=${token};`));
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; Secure/);
    expect(setCookie).toMatch(/; SameSite=Lax/);
    expect(setCookie).toMatch(/; Path=\/graphql/);
    const expires = new Date(/Expires=([^;]+)/.exec(setCookie)![1]!);
    expect(expires.getTime()).toBeGreaterThan(Date.now() + 29 * 24 * 3_600_000);
  });

  it("answers queries from the cookie alone, and tells the page its CSRF token again", async () => {
    const { cookie, csrfToken } = await browserOwner();
    const answer = await post(started.t.url, `{ me { email } csrfToken }`, { cookie });
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.csrfToken).toBe(csrfToken);
  });

  it("refuses a mutation by cookie without the CSRF token, or with another session's, and changes nothing", async () => {
    const { cookie } = await browserOwner();
    const other = await browserOwner();
    for (const headers of [{}, { "x-csrf-token": other.csrfToken }, { "x-csrf-token": "" }] as Array<Record<string, string>>) {
      const answer = await post(started.t.url, CREATE_KEY, { cookie, headers });
      expect(answer.status).toBe(403);
      expect(answer.body.errors[0].extensions).toEqual({ code: "csrf_token_invalid" });
      expect(answer.body.errors[0].message).toMatch(/x-csrf-token/);
    }
    expect((await post(started.t.url, KEY_COUNT, { cookie })).body.data.keys).toEqual([]);
  });

  it("takes a mutation by cookie with the CSRF token, and a Bearer session needs none", async () => {
    const { cookie, csrfToken, token } = await browserOwner();
    const byCookie = await post(started.t.url, CREATE_KEY, { cookie, headers: { "x-csrf-token": csrfToken } });
    expect(byCookie.body.errors).toBeUndefined();
    const byBearer = await post(started.t.url, CREATE_KEY, { headers: { authorization: `Bearer ${token}` } });
    expect(byBearer.body.errors).toBeUndefined();
    expect((await post(started.t.url, KEY_COUNT, { cookie })).body.data.keys).toHaveLength(2);
    expect((await post(started.t.url, `{ csrfToken }`, { headers: { authorization: `Bearer ${token}` } })).body.data.csrfToken).toBeNull();
  });

  it("clears the cookie on sign-out, after which it opens nothing", async () => {
    const { cookie, csrfToken } = await browserOwner();
    const out = await post(started.t.url, `mutation { signOut }`, { cookie, headers: { "x-csrf-token": csrfToken } });
    expect(out.body.data.signOut).toBe(true);
    expect(out.setCookies[0]).toMatch(/^sentx_session=; Max-Age=0;/);
    expect(errorCode((await post(started.t.url, `{ me { id } }`, { cookie })).body)).toBe("unauthorized");
  });

  it("refuses bodies another site could post without a preflight, before running anything", async () => {
    const email = `form-${Date.now()}@example.com`;
    const signUp = `mutation { signUp(email: "${email}", password: "long enough password") { id } }`;
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await fetch(`${started.t.url}/graphql`, { method: "POST", headers: { "content-type": contentType }, body: JSON.stringify({ query: signUp }) });
      expect(res.status).toBe(415);
      expect((await res.json()).errors[0].extensions.code).toBe("invalid_request_error");
    }
    const signIn = await started.api.signIn(email, "long enough password");
    expect(errorCode(signIn)).toBe("unauthorized");
  });
});

describe("ended sessions", () => {
  it("are deleted by the cleanup, and live ones are kept", async () => {
    const clock = offsetClock();
    const sessions = createSessions({ db: started.t.database.db, clock });
    const owner = await started.api.owner();
    const signedOut = await sessions.start(owner.accountId);
    const expiring = await sessions.start(owner.accountId);
    await sessions.end((await sessions.find(signedOut.token))!.id);
    const rows = () => started.t.database.db.select().from(dashboardSessions).where(eq(dashboardSessions.accountId, owner.accountId));
    expect(await rows()).toHaveLength(3);

    while ((await sessions.deleteEnded()) > 0);
    expect(await rows()).toHaveLength(2);
    expect(await sessions.find(expiring.token)).not.toBeNull();

    clock.advance(30 * 24 * 3_600_000 + 60_000);
    while ((await sessions.deleteEnded()) > 0);
    expect(await rows()).toHaveLength(0);
  });
});

describe("claiming an account that ops created", () => {
  const claim = (token: string, password: string) =>
    post(started.t.url, `mutation ($token: String!, $password: String!) { claimAccount(token: $token, password: $password) { token account { id email } } }`, {
      variables: { token, password },
    });

  it("signs the owner up with the one-time token, which then works no more", async () => {
    const ops = opsClient(started.t.url);
    const account = await ops.accounts.create.mutate({ email: `claimed-${Date.now()}@example.com`, initialCreditsCents: 300 });
    const issued = await ops.accounts.issueClaimToken.mutate({ accountId: account.id });
    expect(issued.claimToken).toMatch(/^claim_[0-9A-Za-z]{40}$/);
    expect(new Date(issued.expiresAt).getTime()).toBeGreaterThan(Date.now() + 71 * 3_600_000);

    const claimed = await claim(issued.claimToken, "the owner's own password");
    expect(claimed.body.errors).toBeUndefined();
    expect(claimed.body.data.claimAccount.account).toEqual({ id: account.id, email: account.email });
    expect(claimed.setCookies[0]).toMatch(/^sentx_session=sess_/);
    const me = await started.api.graphql(`{ me { id balanceCents } }`, {}, claimed.body.data.claimAccount.token);
    expect(me.data!.me).toEqual({ id: account.id, balanceCents: 300 });
    expect(errorCode(await started.api.signIn(account.email, "the owner's own password"))).toBeUndefined();

    const again = await claim(issued.claimToken, "someone else's password");
    expect(again.body.errors[0].extensions).toMatchObject({ code: "unauthorized", param: "token" });
    expect(errorCode(await started.api.signIn(account.email, "someone else's password"))).toBe("unauthorized");

    const view = await ops.accounts.get.query({ accountId: account.id });
    expect(view).not.toHaveProperty("claimTokenHash");
    const audited = await started.t.database.db.select().from(auditLog);
    expect(JSON.stringify(audited)).not.toContain(issued.claimToken);
  });

  it("replaces an earlier token, ends the sessions of an earlier password, and refuses a guessed token", async () => {
    const ops = opsClient(started.t.url);
    const owner = await started.api.owner();
    const first = await ops.accounts.issueClaimToken.mutate({ accountId: owner.accountId });
    const second = await ops.accounts.issueClaimToken.mutate({ accountId: owner.accountId, validForHours: 1 });
    expect(errorCode((await claim(first.claimToken, "a brand new password")).body)).toBe("unauthorized");
    expect(errorCode((await claim(`claim_${"x".repeat(40)}`, "a brand new password")).body)).toBe("unauthorized");
    expect(errorCode((await claim(second.claimToken, "short")).body)).toBe("invalid_request_error");

    expect((await claim(second.claimToken, "a brand new password")).body.errors).toBeUndefined();
    expect(errorCode(await started.api.graphql(`{ me { id } }`, {}, owner.token))).toBe("unauthorized");
  });

  it("refuses an unknown account and out-of-range lifetimes", async () => {
    const ops = opsClient(started.t.url);
    await expect(ops.accounts.issueClaimToken.mutate({ accountId: "acct_nobody" })).rejects.toThrow(/No account acct_nobody/);
    const owner = await started.api.owner();
    for (const validForHours of [0, 721, 1.5]) {
      await expect(ops.accounts.issueClaimToken.mutate({ accountId: owner.accountId, validForHours })).rejects.toThrow(/validForHours/);
    }
  });
});

describe("introspection and GraphiQL", () => {
  let development: TestPlatform;
  beforeAll(async () => {
    development = await startTestPlatform({ env: { GRAPHQL_DEV_TOOLS: "on" } });
  });
  afterAll(() => development?.close());

  const introspect = (url: string) => post(url, `{ __schema { queryType { name } } }`);
  const graphiql = (url: string) => fetch(`${url}/graphql`, { headers: { accept: "text/html" } });

  it("are off in production: a platform on PostgreSQL", async () => {
    const answer = await introspect(started.t.url);
    expect(answer.body.errors[0]).toMatchObject({ message: expect.stringMatching(/Introspection is off/), extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
    expect((await graphiql(started.t.url)).headers.get("content-type") ?? "").not.toMatch(/text\/html/);
  });

  it("are on in development", async () => {
    expect((await introspect(development.url)).body.data.__schema.queryType.name).toBe("Query");
    const page = await graphiql(development.url);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/GraphiQL/i);
    await dashboard(development).owner();
  });

  it("default to on only for the embedded default", () => {
    expect(loadConfig({}).graphqlDevTools).toBe(true);
    expect(loadConfig({ DATABASE_URL: "postgres://localhost/sentx" }).graphqlDevTools).toBe(false);
    expect(loadConfig({ NODE_ENV: "production" }).graphqlDevTools).toBe(false);
    expect(loadConfig({ HOST: "0.0.0.0" }).graphqlDevTools).toBe(false);
    expect(loadConfig({ DATABASE_URL: "postgres://localhost/sentx", GRAPHQL_DEV_TOOLS: "on" }).graphqlDevTools).toBe(true);
  });
});
