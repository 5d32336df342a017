import { readFile } from "node:fs/promises";
import { eq } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { requests } from "../../src/domain/schema/index.js";
import {
  accessibilityViolations,
  browserForFile,
  DESKTOP,
  newContext,
  PHONE,
  screenshot,
  signInThroughPage,
  signUpThroughPage,
  tableRows,
} from "../support/browser.js";
import { dashboard } from "../support/dashboard.js";
import { eventually } from "../support/eventually.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { checkoutSession, deliver, STRIPE_TEST_ENV, type StripeStandIn, startStripeStandIn, stripeEvent } from "../support/stripe-stand-in.js";

// The web dashboard (web/) as a person uses it, in headless Chromium against the real server: Stripe's API
// played by a local stand-in, its webhooks signed as Stripe signs them, API calls made with the official SDK.

const started = browserForFile();
let t: TestPlatform;
let stripe: StripeStandIn;
let api: ReturnType<typeof dashboard>;

beforeAll(async () => {
  stripe = await startStripeStandIn();
  t = await startTestPlatform({ env: { ...STRIPE_TEST_ENV, STRIPE_API_BASE: stripe.baseUrl } });
  api = dashboard(t);
});
afterAll(async () => {
  await t?.close();
  await stripe?.close();
});

// Each test's browser context, closed after it whatever happened.
let contexts: BrowserContext[] = [];
afterEach(async () => {
  await Promise.all(contexts.map((context) => context.close()));
  contexts = [];
});

async function openPage(options: Parameters<typeof newContext>[2] = {}): Promise<Page> {
  const context = await newContext(started.browser, t.url, options);
  contexts.push(context);
  return context.newPage();
}

/** A fresh page on the sign-in form, once it shows. */
async function openSignIn(options: Parameters<typeof newContext>[2] = {}): Promise<Page> {
  const page = await openPage(options);
  await page.goto("/dashboard/sign-in");
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  return page;
}

const BROWSER_TEST_MS = 90_000;
let people = 0;
const newEmail = () => `person-${process.pid}-${++people}-${Date.now()}@example.com`;

/** Credit for `accountId`, granted by an operator. */
async function grant(accountId: string, amountCents: number) {
  await opsClient(t.url).credits.grant.mutate({ accountId, amountCents, idempotencyKey: `grant-${accountId}-${amountCents}`, memo: "opening credit" });
}

/** An owner signed up through the API, with `creditCents` granted and one key made through the API. */
async function ownerWithKey(keyName: string, creditCents = 1_000) {
  const owner = await api.owner();
  if (creditCents > 0) await grant(owner.accountId, creditCents);
  const created = await api.graphql(`mutation ($name: String!) { createKey(name: $name) { key apiKey { id } } }`, { name: keyName }, owner.token);
  expect(created.errors).toBeUndefined();
  return { ...owner, key: created.data!.createKey.key as string };
}

/** A field of the usage page's range form, by the start of its label (a select's name goes on with its choice). */
const usageField = (page: Page, label: string) => page.getByRole("form", { name: "Usage range" }).getByLabel(new RegExp(`^${label}`));

/** A usage chart, by its title. */
const chartOf = (page: Page, title: string) => page.getByRole("img", { name: `${title} chart; the table below lists the same numbers.` });

/** What a chart's legend shows for one series at the pointer (the legend is the chart's own table, hidden from screen readers with the picture). */
const legendValue = (chart: Locator, series: string) =>
  chart.evaluate((element, label) => {
    const row = [...element.querySelectorAll("tr")].find((tr) => tr.querySelector("th")?.textContent?.trim() === label);
    return row?.querySelector("td")?.textContent?.trim() ?? null;
  }, series);

/**
 * What the legend reads with the pointer on a chart's first or last point: the pointer walks in from that
 * edge until it is over the plot (the axes take a margin), where the cursor snaps to the nearest point.
 */
async function pointAt(page: Page, chart: Locator, series: string, end: "first" | "last") {
  const box = (await chart.locator("canvas").first().boundingBox())!;
  for (let inset = 2; inset < box.width / 4; inset += 8) {
    await page.mouse.move(end === "first" ? box.x + inset : box.x + box.width - inset, box.y + box.height / 2);
    const value = await legendValue(chart, series);
    if (value !== "–") return value;
  }
  return null;
}

/** The rows of the table named `name`. */
const rowsOf = (page: Page, name: string) => tableRows(page.getByRole("table", { name, exact: true }));

/** The text of each term and its definition in a list of tiles (Balance, Totals). */
async function tiles(page: Page, label: string): Promise<Record<string, string>> {
  const pairs = await page
    .getByLabel(label, { exact: true })
    .evaluate((list) => [...list.querySelectorAll("dt")].map((term) => [term.textContent ?? "", term.nextElementSibling?.textContent ?? ""]));
  return Object.fromEntries(pairs);
}

const money = (cents: number) => new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(cents / 100);
const count = (value: number) => new Intl.NumberFormat("en-US").format(value);

/** The SDK's refusal: its HTTP status and the error's code. */
async function refusalOf(call: Promise<unknown>) {
  const error = await call.then(
    () => null,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return { status: (error as InstanceType<typeof OpenAI.APIError>).status, code: (error as InstanceType<typeof OpenAI.APIError>).code };
}

/** A line of RFC 4180 CSV as the dashboard writes it (quoted only where needed). */
function csvCells(line: string): string[] {
  return [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)]
    .slice(0, -1)
    .map(([, cell]) => (cell!.startsWith('"') ? cell!.slice(1, -1).replaceAll('""', '"') : cell!));
}

describe("the web dashboard in Chromium", () => {
  it(
    "signs up, shows a new key once with a working copy button, and shows that key's request in the usage charts, tables and CSV",
    async () => {
      const page = await openPage({ permissions: ["clipboard-read", "clipboard-write"], timezoneId: "Asia/Tokyo" });
      // A plain address: this page's screenshot is the README's.
      const email = "ada@example.com";
      const password = "a long enough passphrase";
      await signUpThroughPage(page, { email, password, displayName: "Ada" });

      // Signed out, the dashboard's pages lead to the sign-in form; signing in again leads back to the keys.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
      await page.goto("/dashboard/usage");
      await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
      await signInThroughPage(page, { email, password });
      await expect.poll(() => page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Keys" }).getAttribute("aria-current")).toBe("page");

      // A new key: its whole secret shown this once, with the warning, and copied by the button.
      await page.getByLabel("Key name").fill("reporting app");
      await page.getByRole("button", { name: "Create key" }).click();
      const newKey = page.getByRole("region", { name: "Your new key “reporting app”" });
      await newKey.waitFor();
      await expect.poll(() => newKey.getByText("It is shown only this once").isVisible()).toBe(true);
      const key = await newKey.getByLabel("New API key").inputValue();
      expect(key).toMatch(/^sk-/);
      await newKey.getByRole("button", { name: "Copy key" }).click();
      await newKey.getByRole("status").filter({ hasText: "Copied to the clipboard." }).waitFor();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
      await newKey.getByRole("button", { name: "I have saved it" }).click();
      await newKey.waitFor({ state: "detached" });
      await screenshot(page, "keys");

      // Never again: a reload lists the key by its ends only.
      await page.reload();
      const [row] = await rowsOf(page, "API keys");
      expect(row![0]).toBe("reporting app");
      const [displayPrefix, displaySuffix] = row![1]!.split("…") as [string, string];
      expect(displayPrefix).toMatch(/^sk-/);
      expect(key.startsWith(displayPrefix) && key.endsWith(displaySuffix) && key.length > row![1]!.length).toBe(true);
      expect(row![4]).toBe("Active");
      expect(await page.content()).not.toContain(key);

      // The key at work: one chat request naming an end user and a conversation.
      const { id: accountId } = (await api.signIn(email, password)).data!.signIn.account as { id: string };
      await grant(accountId, 500);
      const identity = { "X-User-Id": "user-ada", "X-User-Name": "Ada Lovelace", "X-Session-Id": "conversation-1" };
      const { data: completion, response } = await t
        .openai(key, { defaultHeaders: identity })
        .chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "How many tokens is this?" }] })
        .withResponse();
      const usage = completion.usage!;
      expect(usage.prompt_tokens).toBeGreaterThan(0);
      const requestId = response.headers.get("x-request-id")!;
      const [record] = await eventually(
        () => t.platform.services.db.select().from(requests).where(eq(requests.id, requestId)),
        (rows) => rows.length === 1,
      );
      expect(record).toMatchObject({ inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens });

      // The usage page, by day over the last week of the browser's zone: today's row holds the one request.
      await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Usage" }).click();
      await page.getByRole("heading", { level: 1, name: "Usage" }).waitFor();
      await page.getByRole("table", { name: "Requests per day" }).waitFor();
      const today = new Intl.DateTimeFormat("en-US", { timeZone: "Asia/Tokyo", dateStyle: "medium" }).format(record!.createdAt);
      const byDay = await rowsOf(page, "Requests per day");
      expect(byDay).toHaveLength(7);
      expect(byDay.filter(([, requestCount]) => requestCount !== "0")).toEqual([[today, "1"]]);
      const rowOfToday = (rows: string[][]) => rows.find(([day]) => day === today);
      expect(rowOfToday(await rowsOf(page, "Tokens per day"))).toEqual([today, count(usage.prompt_tokens), count(usage.completion_tokens)]);
      expect(rowOfToday(await rowsOf(page, "Cost per day"))).toEqual([today, money(record!.costCents)]);
      expect(await tiles(page, "Totals")).toEqual({
        Requests: "1",
        "Input tokens": count(usage.prompt_tokens),
        "Output tokens": count(usage.completion_tokens),
        Cost: money(record!.costCents),
      });
      // Each chart is drawn (uPlot paints a canvas) beside its table; pointing at today's end of the requests
      // chart, its legend reads the one request.
      for (const title of ["Requests", "Tokens", "Cost"]) {
        const canvas = chartOf(page, title).locator("canvas").first();
        const size = await canvas.evaluate((element: HTMLCanvasElement) => ({ width: element.width, height: element.height }));
        expect(size.width, title).toBeGreaterThan(0);
        expect(size.height, title).toBeGreaterThan(0);
      }
      const requestsChart = chartOf(page, "Requests");
      expect(await pointAt(page, requestsChart, "Requests", "last")).toBe("1");
      expect(await pointAt(page, requestsChart, "Requests", "first")).toBe("0");
      await page.mouse.move(0, 0);
      await screenshot(page, "usage", { docsCopy: "docs/images/dashboard-usage.png" });

      // The CSV holds what the tables show, row for row.
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
      expect(download.suggestedFilename()).toMatch(/^usage-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
      const csv = await readFile(await download.path(), "utf8");
      expect(csv.startsWith("\uFEFF")).toBe(true);
      const lines = csv.slice(1).split("\r\n");
      expect(lines.at(-1)).toBe("");
      const [header, ...csvRows] = lines.slice(0, -1).map(csvCells);
      expect(header).toEqual(["bucket_start_utc", "bucket_start_Asia/Tokyo", "requests", "input_tokens", "output_tokens", "cost_usd"]);
      const tokensByDay = await rowsOf(page, "Tokens per day");
      const costByDay = await rowsOf(page, "Cost per day");
      expect(csvRows).toHaveLength(byDay.length);
      csvRows.forEach(([startUtc, , requestCount, inputTokens, outputTokens, costUsd], index) => {
        const day = new Intl.DateTimeFormat("en-US", { timeZone: "Asia/Tokyo", dateStyle: "medium" }).format(new Date(startUtc!));
        expect([day, count(Number(requestCount))], `row ${index}`).toEqual(byDay[index]);
        expect([day, count(Number(inputTokens)), count(Number(outputTokens))]).toEqual(tokensByDay[index]);
        expect([day, `$${costUsd}`]).toEqual(costByDay[index]);
      });

      // By the hour, in another zone chosen on the page: one hour holds the request.
      const zone = "America/New_York";
      const localDay = new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(record!.createdAt);
      await usageField(page, "From").fill(localDay);
      await usageField(page, "To").fill(localDay);
      await usageField(page, "Per").selectOption({ label: "Hour" });
      await usageField(page, "Time zone").fill(zone);
      await page.getByRole("button", { name: "Show usage" }).click();
      await page.getByRole("table", { name: "Requests per hour" }).waitFor();
      const byHour = await rowsOf(page, "Requests per hour");
      expect(byHour.length).toBeGreaterThanOrEqual(23); // 23 or 25 on a daylight-saving day
      const hour = new Intl.DateTimeFormat("en-US", { timeZone: zone, dateStyle: "medium", timeStyle: "short" }).format(
        new Date(Math.floor(record!.createdAt.getTime() / 3_600_000) * 3_600_000),
      );
      expect(byHour.filter(([, requestCount]) => requestCount !== "0")).toEqual([[hour, "1"]]);

      // Broken down by key, model, end user and conversation: the one of each the request named, with its numbers.
      const breakdowns = [
        ["Key", `reporting app (${displayPrefix}…)`],
        ["Model", "sentx-v1"],
        ["End user", "user-ada"],
        ["Conversation", "conversation-1"],
      ] as const;
      for (const [dimension, label] of breakdowns) {
        await usageField(page, "Break down by").selectOption({ label: dimension });
        await page.getByRole("button", { name: "Show usage" }).click();
        expect(await rowsOf(page, `Usage by ${dimension.toLowerCase()}`), dimension).toEqual([
          [label, "1", count(usage.prompt_tokens), count(usage.completion_tokens), money(record!.costCents)],
        ]);
        // The charts draw one series per group: the table under each has that group's column.
        expect((await page.getByRole("table", { name: "Requests per hour", exact: true }).locator("thead th").allTextContents()).slice(1), dimension).toEqual([label]);
      }

      // A range the page cannot ask for is refused on the page, before any request.
      await usageField(page, "From").fill("2026-03-10");
      await usageField(page, "To").fill("2026-03-01");
      await page.getByRole("button", { name: "Show usage" }).click();
      await page.getByRole("alert").filter({ hasText: "The start date is after the end date." }).waitFor();
    },
    BROWSER_TEST_MS,
  );

  it(
    "tops up through Stripe Checkout: the return page shows the balance rise once Stripe confirms, and the history lists it",
    async () => {
      const owner = await api.owner();
      const page = await openPage();
      await signInThroughPage(page, owner);
      await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Credits" }).click();
      await page.getByRole("heading", { level: 1, name: "Credits" }).waitFor();
      const before = await tiles(page, "Balance");
      expect(before).toEqual({ Balance: "$0.00", Held: "$0.00", Available: "$0.00" });
      await screenshot(page, "credits");

      // An amount out of range is refused on the page; Stripe is never asked.
      const stripeCalls = stripe.requests.length;
      await page.getByRole("radio", { name: "Other amount" }).check();
      await page.getByLabel("Amount in dollars ($5 to $1,000)").fill("4.99");
      await page.getByRole("button", { name: "Pay with Stripe" }).click();
      await page.getByRole("alert").filter({ hasText: "Enter an amount from $5 to $1,000" }).waitFor();
      expect(stripe.requests.length).toBe(stripeCalls);

      // $12.50: the page goes to the Checkout URL Stripe gave (Stripe's page itself is played here).
      await page.route("https://checkout.stripe.com/**", (route) =>
        route.fulfill({ contentType: "text/html", body: "<!doctype html><title>Stripe Checkout</title><h1>Pay SentX</h1>" }),
      );
      await page.getByLabel("Amount in dollars ($5 to $1,000)").fill("12.50");
      await page.getByRole("button", { name: "Pay with Stripe" }).click();
      await page.waitForURL(/^https:\/\/checkout\.stripe\.com\//);
      const sessionId = stripe.sessionIds.at(-1)!;
      expect(page.url()).toBe(`https://checkout.stripe.com/c/pay/${sessionId}`);
      const sent = stripe.requests.at(-1)!.form;
      expect(sent["line_items[0][price_data][unit_amount]"]).toBe("1250");
      expect(sent["metadata[account_id]"]).toBe(owner.accountId);

      // Paid: Stripe sends the payer back at once, and its webhook a moment later.
      const successUrl = sent.success_url!.replace("{CHECKOUT_SESSION_ID}", sessionId);
      expect(successUrl.startsWith(`${t.url}/dashboard/credits/success?session_id=`)).toBe(true);
      await page.goto(successUrl);
      await page.getByRole("heading", { level: 1, name: "Thank you: payment received" }).waitFor();
      expect(await page.getByRole("status").textContent()).toMatch(/this page checks for it/);
      expect((await tiles(page, "Balance")).Balance).toBe("$0.00");
      const topUp = {
        topUpId: sent.client_reference_id!,
        accountId: owner.accountId,
        amountCents: 1_250,
        sessionId,
        paymentIntentId: `pi_browser${Date.now()}`,
      };
      expect(await deliver(t.url, stripeEvent("checkout.session.completed", checkoutSession(topUp, "paid")))).toEqual({ status: 200, body: { received: true } });
      await page.getByRole("status").filter({ hasText: "Your top-up of $12.50 is in your balance." }).waitFor();
      expect(await tiles(page, "Balance")).toEqual({ Balance: "$12.50", Held: "$0.00", Available: "$12.50" });

      // Back on the credits page: the top-up paid, and the ledger's entry for it (also under its kind's filter).
      await page.getByRole("link", { name: "Back to credits" }).click();
      await page.getByRole("heading", { level: 1, name: "Credits" }).waitFor();
      await page.getByRole("heading", { name: "Recent top-ups" }).waitFor();
      expect((await tableRows(page.getByRole("region", { name: "Recent top-ups" }).getByRole("table"))).map((row) => row.slice(1))).toEqual([["$12.50", "Paid", "$12.50"]]);
      await page.getByRole("table", { name: "Ledger" }).waitFor();
      const ledger = await rowsOf(page, "Ledger");
      expect(ledger.map((row) => row.slice(1, 4))).toEqual([["Top-up", "$12.50", "$12.50"]]);
      await page.getByLabel("Show").selectOption({ label: "Usage" });
      await page.getByText("Nothing here yet.").waitFor();
      await page.getByLabel("Show").selectOption({ label: "Top-up" });
      await page.getByRole("table", { name: "Ledger" }).waitFor();
      expect((await rowsOf(page, "Ledger")).map((row) => row[1])).toEqual(["Top-up"]);

      // Leaving Checkout without paying lands on the cancel page; nothing changes.
      await page.goto(sent.cancel_url!);
      await page.getByRole("heading", { level: 1, name: "Top-up cancelled" }).waitFor();

      // The other order: Stripe's webhook lands before the payer is back, and the page says so at once.
      await page.goto(`${t.url}/dashboard/credits`);
      await page.getByRole("radio", { name: "Other amount" }).check();
      await page.getByLabel("Amount in dollars ($5 to $1,000)").fill("7");
      await page.getByRole("button", { name: "Pay with Stripe" }).click();
      await page.waitForURL(/^https:\/\/checkout\.stripe\.com\//);
      const second = stripe.requests.at(-1)!.form;
      const secondSession = stripe.sessionIds.at(-1)!;
      const secondTopUp = { ...topUp, topUpId: second.client_reference_id!, amountCents: 700, sessionId: secondSession, paymentIntentId: `pi_first${Date.now()}` };
      expect(await deliver(t.url, stripeEvent("checkout.session.completed", checkoutSession(secondTopUp, "paid")))).toEqual({ status: 200, body: { received: true } });
      await page.goto(second.success_url!.replace("{CHECKOUT_SESSION_ID}", secondSession));
      await page.getByRole("status").filter({ hasText: "Your top-up of $7.00 is in your balance." }).waitFor();
      expect((await tiles(page, "Balance")).Balance).toBe("$19.50");
    },
    BROWSER_TEST_MS,
  );

  it(
    "renames a key and limits its models, then revokes it only once the owner confirms; the API holds the key to each",
    async () => {
      const owner = await ownerWithKey("build server");
      const client = t.openai(owner.key);
      const ask = () => client.chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "ping" }] });
      await ask();
      const page = await openPage();
      await signInThroughPage(page, owner);
      const keyRow = async () => (await rowsOf(page, "API keys"))[0]!;

      await page.getByRole("button", { name: "Rename build server" }).click();
      await page.getByLabel("New name for build server").fill("ci server");
      await page.getByRole("button", { name: "Save name" }).click();
      await page.getByRole("status").filter({ hasText: "Renamed to “ci server”." }).waitFor();
      expect((await keyRow())[0]).toBe("ci server");

      // One model allowed: the list says so, and the API refuses the key any other.
      const setModels = async (models: string) => {
        await page.getByRole("button", { name: "Allowed models of ci server" }).click();
        await page.getByLabel("Allowed models for ci server").fill(models);
        await page.getByRole("button", { name: "Save models" }).click();
        await page.getByRole("status").filter({ hasText: "Allowed models of “ci server” saved." }).waitFor();
        await page.getByLabel("Allowed models for ci server").waitFor({ state: "detached" });
      };
      await setModels("sentx-mini");
      expect((await keyRow())[5]).toBe("sentx-mini");
      expect(await refusalOf(ask())).toEqual({ status: 403, code: "model_not_allowed" });
      await setModels("");
      expect((await keyRow())[5]).toBe("Every model");
      await ask();

      // Revoking, cancelled: nothing happens.
      await page.getByRole("button", { name: "Revoke ci server" }).click();
      const dialog = page.getByRole("dialog", { name: "Revoke “ci server”?" });
      await dialog.waitFor();
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await dialog.waitFor({ state: "detached" });
      expect((await keyRow())[4]).toBe("Active");
      await ask();

      // Confirmed: revoked at once.
      await page.getByRole("button", { name: "Revoke ci server" }).click();
      await dialog.getByRole("button", { name: "Revoke key" }).click();
      await page.getByRole("status").filter({ hasText: "“ci server” is revoked." }).waitFor();
      expect((await keyRow())[4]).toBe("Revoked");
      expect(await page.getByRole("button", { name: "Revoke ci server" }).count()).toBe(0);
      expect(await refusalOf(ask())).toEqual({ status: 401, code: "invalid_api_key" });

      // And still so after a reload.
      await page.reload();
      expect((await keyRow())[4]).toBe("Revoked");
    },
    BROWSER_TEST_MS,
  );

  it(
    "shows a wrong password at sign-in and a too-short password or a taken email at sign-up, where they happen",
    async () => {
      const owner = await api.owner();
      const page = await openSignIn();
      await page.getByLabel("Email").fill(owner.email);
      await page.getByLabel("Password").fill("not the password at all");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").filter({ hasText: "Incorrect email or password." }).waitFor();
      expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Sign in");
      await screenshot(page, "sign-in-refused");

      // Too short: the browser holds the form back and says why at the field; no account is made.
      await page.getByRole("link", { name: "Create an account" }).click();
      await page.getByRole("heading", { level: 1, name: "Create an account" }).waitFor();
      const email = newEmail();
      await page.getByLabel("Email").fill(email);
      const passwordField = page.getByLabel("Password");
      await passwordField.fill("short");
      await page.getByRole("button", { name: "Create account" }).click();
      const validity = await passwordField.evaluate((field: HTMLInputElement) => ({ tooShort: field.validity.tooShort, message: field.validationMessage }));
      expect(validity.tooShort).toBe(true);
      expect(validity.message).toMatch(/10 characters/);
      expect(await passwordField.getAttribute("aria-describedby").then((id) => page.locator(`#${id}`).textContent())).toBe("10 to 256 characters.");
      expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Create an account");
      expect((await api.signIn(email, "short")).errors?.[0]?.extensions?.code).toBe("unauthorized");

      // Taken: the API's refusal is shown under the form.
      await page.getByLabel("Email").fill(owner.email);
      await passwordField.fill("another long passphrase");
      await page.getByRole("button", { name: "Create account" }).click();
      await page.getByRole("alert").filter({ hasText: `An account with email ${owner.email} already exists.` }).waitFor();
      expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Create an account");
    },
    BROWSER_TEST_MS,
  );

  it(
    "lists a file uploaded through the API and deletes it once the owner confirms",
    async () => {
      const owner = await ownerWithKey("uploader", 0);
      const client = t.openai(owner.key);
      const uploaded = await client.files.create({ file: await toFile(Buffer.from("quarterly numbers\n"), "q3-notes.txt"), purpose: "assistants" });
      const page = await openPage();
      await signInThroughPage(page, owner);
      await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Files" }).click();
      await page.getByRole("heading", { level: 1, name: "Files" }).waitFor();
      await page.getByRole("table", { name: "Files" }).waitFor();
      const [row] = await rowsOf(page, "Files");
      expect(row!.slice(0, 3)).toEqual(["q3-notes.txt", "18 bytes", "text/plain"]);
      expect(row![5]).toBe("Scanned, clean");
      await screenshot(page, "files");

      await page.getByRole("button", { name: "Delete q3-notes.txt" }).click();
      const dialog = page.getByRole("dialog", { name: "Delete q3-notes.txt?" });
      await dialog.getByText(uploaded.id).waitFor();
      await dialog.getByRole("button", { name: "Delete file" }).click();
      await page.getByRole("status").filter({ hasText: "Deleted q3-notes.txt." }).waitFor();
      await page.getByText("No files yet.").waitFor();
      expect(await refusalOf(client.files.retrieve(uploaded.id))).toEqual({ status: 404, code: "file_not_found" });
    },
    BROWSER_TEST_MS,
  );

  it(
    "signs in with the keyboard alone",
    async () => {
      const owner = await api.owner();
      const page = await openSignIn();
      await screenshot(page, "sign-in");
      const focusedName = () => page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name ?? null);
      for (let presses = 0; presses < 10 && (await focusedName()) !== "email"; presses++) await page.keyboard.press("Tab");
      expect(await focusedName()).toBe("email");
      await page.keyboard.type(owner.email);
      await page.keyboard.press("Tab");
      expect(await focusedName()).toBe("password");
      await page.keyboard.type(owner.password);
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    },
    BROWSER_TEST_MS,
  );

  it(
    "the accessibility check finds what it looks for: an unnamed button and grey-on-white text; a rule skipped for one element still holds for the others",
    async () => {
      const page = await openSignIn();
      expect(await accessibilityViolations(page)).toEqual([]);
      await page.evaluate(() => {
        const main = document.querySelector("main")!;
        main.insertAdjacentHTML(
          "beforeend",
          '<button type="button" class="unnamed-a"></button><button type="button" class="unnamed-b"></button><p class="faint">Hard to read</p>',
        );
        // Through the CSSOM: the dashboard's Content-Security-Policy refuses style attributes.
        const faint = document.querySelector<HTMLElement>(".faint")!;
        faint.style.color = "#bbbbbb";
        faint.style.background = "#ffffff";
      });
      const found = await accessibilityViolations(page);
      expect(found.map(({ rule, elements }) => [rule, elements.map(({ target }) => target)])).toEqual([
        ["button-name", [".unnamed-a", ".unnamed-b"]],
        ["color-contrast", [".faint"]],
      ]);
      const skipped = await accessibilityViolations(page, { skip: [{ rule: "button-name", selector: ".unnamed-a", why: "a widget the app does not draw" }] });
      expect(skipped.map(({ rule, elements }) => [rule, elements.map(({ target }) => target)])).toEqual([
        ["color-contrast", [".faint"]],
        ["button-name", [".unnamed-b"]],
      ]);
    },
    BROWSER_TEST_MS,
  );

  for (const [width, viewport, colorScheme] of [
    ["desktop", DESKTOP, "light"],
    ["375 px phone", PHONE, "light"],
    ["desktop", DESKTOP, "dark"],
  ] as const) {
    it(
      `passes axe-core's WCAG 2 A/AA checks on every page at ${width} width in the ${colorScheme} scheme${viewport === PHONE ? ", none of them scrolling sideways" : ""}`,
      async () => {
        const owner = await ownerWithKey("a key with a rather long name for a phone");
        const client = t.openai(owner.key);
        await client.chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "Something to chart." }] });
        await client.files.create({ file: await toFile(Buffer.from("quarterly numbers\n"), "q3-notes.txt"), purpose: "assistants" });
        const page = await openPage({ viewport, colorScheme });
        const checked: string[] = [];

        /** Every rule passes on the page as it shows now; on the phone, the page is no wider than the screen. */
        const expectAccessible = async (name: string) => {
          expect(await accessibilityViolations(page), `${name} at ${width} width, ${colorScheme}`).toEqual([]);
          if (viewport === PHONE) {
            const widths = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));
            expect(widths.window).toBe(PHONE.width);
            expect(widths.page, `${name} scrolls sideways`).toBeLessThanOrEqual(PHONE.width);
          }
          checked.push(name);
        };
        const heading = (name: string) => page.getByRole("heading", { level: 1, name }).waitFor();

        for (const [path, title] of [
          ["sign-in", "Sign in"],
          ["sign-up", "Create an account"],
          ["claim", "Claim an account"],
        ] as const) {
          await page.goto(`/dashboard/${path}`);
          await heading(title);
          await expectAccessible(title);
        }

        await signInThroughPage(page, owner);
        await page.getByRole("table", { name: "API keys" }).waitFor();
        await expectAccessible("keys");
        if (viewport === PHONE) await screenshot(page, "keys-phone");
        await page.getByLabel("Key name").fill("second key");
        await page.getByRole("button", { name: "Create key" }).click();
        await page.getByRole("region", { name: "Your new key “second key”" }).waitFor();
        await expectAccessible("keys, with a new key shown");
        await page.getByRole("button", { name: "Revoke second key" }).click();
        const dialog = page.getByRole("dialog", { name: "Revoke “second key”?" });
        await dialog.waitFor();
        await expectAccessible("keys, asked to confirm a revocation");
        await dialog.getByRole("button", { name: "Cancel" }).click();
        await dialog.waitFor({ state: "detached" });

        const nav = page.getByRole("navigation", { name: "Dashboard" });
        await nav.getByRole("link", { name: "Credits" }).click();
        await heading("Credits");
        await page.getByRole("table", { name: "Ledger" }).waitFor();
        await expectAccessible("credits");

        await nav.getByRole("link", { name: "Usage" }).click();
        await heading("Usage");
        await usageField(page, "Break down by").selectOption({ label: "Key" });
        await page.getByRole("button", { name: "Show usage" }).click();
        await page.getByRole("table", { name: "Usage by key" }).waitFor();
        await chartOf(page, "Cost").locator("canvas").first().waitFor();
        await expectAccessible("usage, broken down by key");

        await nav.getByRole("link", { name: "Files" }).click();
        await heading("Files");
        await page.getByRole("table", { name: "Files" }).waitFor();
        await expectAccessible("files");

        await page.goto("/dashboard/credits/success?session_id=cs_test_none");
        await heading("Thank you: payment received");
        await expectAccessible("top-up paid");
        await page.goto("/dashboard/credits/cancel");
        await heading("Top-up cancelled");
        await expectAccessible("top-up cancelled");

        expect(checked).toHaveLength(11);
      },
      BROWSER_TEST_MS,
    );
  }
});
