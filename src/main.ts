import { loadConfig } from "./config.js";
import { ensureFirstAccount } from "./domain/bootstrap.js";
import { listen } from "./infra/http-server.js";
import { createPlatform } from "./platform.js";
import { printBanner } from "./banner.js";

const config = loadConfig();
const platform = await createPlatform(config);
const firstRun = config.bootstrap
  ? await ensureFirstAccount(platform.services, config.bootstrapCreditsCents)
  : null;
const server = await listen(platform.fetch, config.host, config.port);
const { scannerProbe } = platform.services;
printBanner({
  config,
  baseUrl: config.publicBaseUrl ?? server.url,
  firstRun,
  driver: platform.database.driver,
  scannerAnswers: scannerProbe ? await scannerProbe.ping() : null,
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  platform.logger.info({ signal }, "shutting down");
  await server.close();
  await platform.close();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
