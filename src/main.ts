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
const server = await listen(platform.fetch, config.host, config.port, config.http);
const { scannerProbe } = platform.services;
printBanner({
  config,
  baseUrl: config.publicBaseUrl ?? server.url,
  firstRun,
  driver: platform.database.driver,
  scannerAnswers: scannerProbe ? await scannerProbe.ping() : null,
});

/**
 * SPEC 13: SIGTERM drains. New connections are refused, requests in flight
 * get the grace period, what is still running then is stopped and billed for
 * what it delivered, every settle and record is written, and Redis and the
 * database close last. A second signal means "now".
 */
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) {
    platform.logger.warn({ signal }, "second signal: exiting without waiting");
    process.exit(1);
  }
  stopping = true;
  platform.logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, "shutting down: draining requests in flight");
  server.stopAccepting();
  await platform.drain(config.shutdownGraceSeconds * 1000);
  await server.close();
  await platform.close();
  platform.logger.info({}, "shut down cleanly");
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
