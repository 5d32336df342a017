import { resolve } from "node:path";
import type { Config } from "./config.js";
import { isEndpoint, type UpstreamConfig } from "./domain/inference/model-table.js";
import type { Account } from "./domain/schema/index.js";

// Hosts only: URLs in the config may carry passwords, and the banner goes to terminals and log collectors.
const hostOf = (url: string) => new URL(url).host;

const upstreamLabel = (upstream: UpstreamConfig) =>
  upstream.provider === "demo"
    ? "DEMO provider (built in, answers without a real model)"
    : `${upstream.provider} ${hostOf(upstream.baseUrl)} (model ${upstream.model})`;

function modelLines(config: Config): string[] {
  const heading = config.modelsSource
    ? `  models, from ${config.modelsSource}:`
    : "  models: the built-in demo table; set SENTX_MODELS_FILE to connect real ones:";
  return [
    heading,
    ...config.models.models.flatMap((model) => [
      `    ${model.id}${model.id === config.models.defaultModel ? " (default)" : ""} → ${model.upstreams.map(upstreamLabel).join(", then ")}`,
      `      serves ${model.capabilities.filter(isEndpoint).join(", ")}`,
    ]),
  ];
}

const databaseLine = ({ database }: Config) =>
  database.kind === "pglite"
    ? `  database: embedded PGlite in ${database.dataDir}`
    : `  database: PostgreSQL at ${database.address}`;

const redisLine = ({ redis, redisDownPolicy }: Config) =>
  redis
    ? `  redis: ${hostOf(redis.url)} (prefix ${redis.prefix}, ${redisDownPolicy} while unreachable)`
    : "  redis: none; rate limits and jobs run in this process (one instance only)";

function scannerLines({ files: { scanning } }: Config, scannerAnswers: boolean | null): string[] {
  switch (scanning.mode) {
    case "off":
      return [
        "",
        "  !!! WARNING: FILE_SCANNING=off — uploaded files are stored WITHOUT a virus scan. Never run a public service like this. !!!",
        "",
      ];
    case "required":
      return [
        scannerAnswers
          ? `  virus scanner: clamd at ${scanning.clamdUrl}`
          : `  virus scanner: clamd at ${scanning.clamdUrl} is NOT answering — uploads are refused (503) until it does (or set FILE_SCANNING=off, at your own risk)`,
      ];
    case "when-answering":
      return scannerAnswers
        ? [`  virus scanner: clamd at ${scanning.clamdUrl} (FILE_SCANNING=auto: should it stop answering, uploads are stored unscanned)`]
        : [
            "",
            `  !!! WARNING: no virus scanner answers at ${scanning.clamdUrl} — uploads are stored WITHOUT a virus scan, marked scan_status "unscanned", until clamd runs there. !!!`,
            "  Fine on your own machine; before serving anyone else, run clamd (see README) or set CLAMD_URL.",
            "",
          ];
  }
}

/** The ops CLI finds the server and its ops token in DATA_DIR: named when it is not the default ./data. */
const opsCommand = (config: Config) =>
  `${config.dataDir === resolve("./data") ? "" : `DATA_DIR=${JSON.stringify(config.dataDir)} `}npm run ops --`;

function firstRunLines(config: Config, baseUrl: string, { account, key }: { account: Account; key: string }): string[] {
  const model = config.models.defaultModel;
  const dollars = (account.balanceCents / 100).toFixed(2);
  return [
    "",
    `First start: created account ${account.id} (${account.email}) with $${dollars} of credits and this API key.`,
    "It is shown only now; keep it somewhere safe:",
    "",
    `  ${key}`,
    "",
    "Try it:",
    "",
    `  curl ${baseUrl}/v1/chat/completions \\`,
    `    -H "Authorization: Bearer ${key}" \\`,
    `    -H "Content-Type: application/json" \\`,
    `    -d '{"model":${JSON.stringify(model)},"messages":[{"role":"user","content":"Hello!"}]}'`,
    "",
    "To sign in to this account on the web dashboard, claim it: it has no password yet. Get a one-time claim token:",
    "",
    `  ${opsCommand(config)} accounts.issueClaimToken '{"accountId":"${account.id}"}'`,
    "",
    `then open ${baseUrl}/dashboard/claim, paste the claimToken it prints and choose a password.`,
    `(Over the API alone: mutation { claimAccount(token: "claim_…", password: "…") { token } } at ${baseUrl}/graphql.)`,
  ];
}

/** What a person starting the platform needs to see, once, on stderr: stdout carries only the JSON log. */
export function printBanner({
  config,
  baseUrl,
  firstRun,
  scannerAnswers,
}: {
  config: Config;
  baseUrl: string;
  firstRun: { account: Account; key: string } | null;
  /** null when scanning is off. */
  scannerAnswers: boolean | null;
}): void {
  const lines = [
    "",
    `SentX is running at ${baseUrl}`,
    `  OpenAI-compatible API: ${baseUrl}/v1`,
    `  web dashboard: ${baseUrl}/dashboard`,
    `  dashboard API (GraphQL): ${baseUrl}/graphql${config.graphqlDevTools ? " (open it in a browser for GraphiQL)" : ""}`,
    databaseLine(config),
    redisLine(config),
    ...scannerLines(config, scannerAnswers),
    ...modelLines(config),
    ...(firstRun ? firstRunLines(config, baseUrl, firstRun) : []),
    "",
    `Ops CLI: ${opsCommand(config)} accounts.create '{"email":"you@example.com","initialCreditsCents":500}'`,
    "",
  ];
  process.stderr.write(`${lines.join("\n")}\n`);
}
