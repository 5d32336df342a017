import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { webBuildState } from "../../scripts/web-build-state.mjs";
import { testEnv } from "./env.js";

// The web dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core. One browser per test file, a fresh context (cookies,
// storage, permissions) per test. Pages are found as a person finds them: by
// role, label and heading.

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCREENSHOTS_DIR = join(root, "test-artifacts", "screenshots");

/** A desktop window, the size the README's screenshots are taken at. */
export const DESKTOP = { width: 1280, height: 800 } as const;
/** A small phone. */
export const PHONE = { width: 375, height: 740 } as const;

// How long a page may take to show what a test waits for: generous, since two
// cores may be busy with the other test files at the same time.
const PAGE_TIMEOUT_MS = 15_000;

/** Builds the dashboard when web/dist is missing or older than its sources (the rule `npm start` follows), for vitest run by hand. */
function ensureDashboardBuilt(): void {
  const state = webBuildState(root);
  if (state !== "missing" && state !== "stale") return;
  const build = spawnSync("npm", ["run", "--silent", "web:build"], { cwd: root, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`npm run web:build failed:\n${build.stdout}\n${build.stderr}`);
}

/**
 * Chromium as the tests run it: headless; without its sandbox as root (CI), which the sandbox refuses;
 * every host name but 127.0.0.1 unresolvable, so no page can reach another machine whatever it links to.
 */
function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: testEnv.chromium,
    headless: true,
    args: [...(process.getuid?.() === 0 ? ["--no-sandbox"] : []), "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
  });
}

/** For a test file: the dashboard built, and one Chromium launched before the tests and closed after. */
export function browserForFile() {
  const started = {} as { browser: Browser };
  beforeAll(async () => {
    ensureDashboardBuilt();
    started.browser = await launchChromium();
  }, 120_000);
  afterAll(() => started.browser?.close());
  return started;
}

/**
 * A fresh browser context on the platform at `baseURL`: its own cookies, a fixed locale and time zone (the
 * tests compute the labels the page should show), and a guard that fails any request to another origin
 * unless the test routes it itself.
 */
export async function newContext(
  browser: Browser,
  baseURL: string,
  {
    viewport = DESKTOP,
    timezoneId = "UTC",
    permissions = [],
    colorScheme = "light",
  }: { viewport?: { width: number; height: number }; timezoneId?: string; permissions?: string[]; colorScheme?: "light" | "dark" } = {},
): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL, viewport, locale: "en-US", timezoneId, colorScheme, acceptDownloads: true });
  if (permissions.length > 0) await context.grantPermissions(permissions, { origin: baseURL });
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const origin = new URL(baseURL).origin;
  await context.route(
    (url) => url.origin !== origin && url.protocol !== "blob:" && url.protocol !== "data:",
    (route) => route.abort("blockedbyclient"),
  );
  return context;
}

/** Signs up on the sign-up page (which signs the new owner in) and waits for the keys page. */
export async function signUpThroughPage(page: Page, { email, password, displayName }: { email: string; password: string; displayName?: string }) {
  await page.goto("/dashboard/sign-up");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  if (displayName) await page.getByLabel("Display name (optional)").fill(displayName);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
}

/** Signs in on the sign-in page and waits for the keys page. */
export async function signInThroughPage(page: Page, { email, password }: { email: string; password: string }) {
  await page.goto("/dashboard/sign-in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
}

/**
 * The page as it looks now, kept as test-artifacts/screenshots/<name>.png.
 * With SENTX_UPDATE_DOCS_SCREENSHOTS=1, also written to `docsCopy` (a
 * screenshot the docs show): only when asked, since it differs every day.
 */
export async function screenshot(page: Page, name: string, { docsCopy }: { docsCopy?: string } = {}): Promise<string> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const path = join(SCREENSHOTS_DIR, `${name}.png`);
  const png = await page.screenshot({ path, animations: "disabled", caret: "hide" });
  if (docsCopy && process.env.SENTX_UPDATE_DOCS_SCREENSHOTS === "1") {
    const target = join(root, docsCopy);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, png);
  }
  return path;
}

/** The text of each body row of a table, cell by cell (row headers included), once the table is shown. */
export async function tableRows(table: Locator): Promise<string[][]> {
  await table.waitFor();
  return table
    .locator("tbody tr")
    .evaluateAll((rows) => rows.map((row) => [...row.querySelectorAll("th, td")].map((cell) => (cell.textContent ?? "").trim())));
}

// axe-core, as the page runs it. Injected by evaluation rather than a <script> tag: the dashboard's
// Content-Security-Policy (script-src 'self') rightly refuses inline scripts, and the test must not loosen it.
let axeSource: string | null = null;
const axeScript = () => (axeSource ??= readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8"));

/**
 * The WCAG 2.0, 2.1 and 2.2 success criteria at levels A and AA that axe tests (colour contrast among them), and
 * axe's best practices (landmarks, one h1, heading levels in order), which a page that meets WCAG may still miss.
 */
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] as const;

/** One failed rule: its id, what it asks, and the elements (CSS selectors) that fail it. */
export interface AxeViolation {
  rule: string;
  impact: string | null;
  help: string;
  elements: { target: string; why: string }[];
}

/**
 * axe-core's WCAG 2 A/AA rules (and best practices) run on the page as it is now, and the rules it fails. `skip` leaves rules out
 * for the elements matching a selector only (a third-party widget the app cannot change), each with its reason.
 */
export async function accessibilityViolations(page: Page, { skip = [] }: { skip?: { rule: string; selector: string; why: string }[] } = {}): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeScript());
  return page.evaluate(
    async ({ tags, skip }) => {
      const axe = (window as unknown as { axe: typeof import("axe-core") }).axe;
      const only = (type: "tag" | "rule", values: string[]) => ({ runOnly: { type, values }, resultTypes: ["violations" as const] });
      const skipped = new Set(skip.map(({ rule }) => rule));
      const found = (await axe.run(document, only("tag", [...tags]))).violations.filter((violation) => !skipped.has(violation.id));
      // A skipped rule still runs on every element but its selector's.
      for (const { rule, selector } of skip) found.push(...(await axe.run({ exclude: [selector] }, only("rule", [rule]))).violations);
      return found.map((violation) => ({
        rule: violation.id,
        impact: violation.impact ?? null,
        help: violation.help,
        elements: violation.nodes.map((node) => ({ target: node.target.join(" "), why: node.failureSummary ?? "" })),
      }));
    },
    { tags: AXE_TAGS, skip },
  );
}
