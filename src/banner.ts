import type { Config } from "./config.js";
import type { Account } from "./domain/schema/index.js";

const usesDemo = (config: Config) => config.models.models.some((m) => m.upstreams.some((u) => u.provider === "demo"));

/** What a person starting the platform needs to see, on stdout, once. */
export function printBanner({
  config,
  baseUrl,
  firstRun,
  driver,
  scannerAnswers,
}: {
  config: Config;
  baseUrl: string;
  firstRun: { account: Account; key: string } | null;
  driver: "postgres" | "pglite";
  /** null when scanning is off. */
  scannerAnswers: boolean | null;
}): void {
  const lines = [
    "",
    `SentX is running at ${baseUrl}`,
    `  OpenAI-compatible API: ${baseUrl}/v1`,
    `  database: ${driver === "pglite" ? `embedded PGlite in ${config.database.kind === "pglite" ? config.database.dataDir : "?"}` : "PostgreSQL"}`,
  ];
  if (config.files.clamdUrl === null) {
    lines.push(
      "",
      "  !!! WARNING: FILE_SCANNING=off — uploaded files are stored WITHOUT a virus scan. Never run a public service like this. !!!",
      "",
    );
  } else {
    lines.push(
      scannerAnswers
        ? `  virus scanner: clamd at ${config.files.clamdUrl}`
        : `  virus scanner: clamd at ${config.files.clamdUrl} is NOT answering — uploads are refused (503) until it does (or set FILE_SCANNING=off, at your own risk)`,
    );
  }
  if (usesDemo(config)) {
    lines.push("  models: DEMO provider (built in, answers without a real model; configure SENTX_MODELS_FILE to connect one)");
  }
  if (firstRun) {
    const dollars = (firstRun.account.balanceCents / 100).toFixed(2);
    lines.push(
      "",
      `First start: created account ${firstRun.account.email} with $${dollars} of credits and this API key.`,
      "It is shown only now; keep it somewhere safe:",
      "",
      `  ${firstRun.key}`,
      "",
      "Try it:",
      "",
      `  curl ${baseUrl}/v1/chat/completions \\`,
      `    -H "Authorization: Bearer ${firstRun.key}" \\`,
      `    -H "Content-Type: application/json" \\`,
      `    -d '{"model":"sentx-v1","messages":[{"role":"user","content":"Hello!"}]}'`,
    );
  }
  lines.push("", `Ops CLI: npm run ops -- accounts.create '{"email":"you@example.com","initialCreditsCents":500}'`, "");
  process.stdout.write(`${lines.join("\n")}\n`);
}
