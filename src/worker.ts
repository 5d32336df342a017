// `npm run worker`: the shared jobs (the hold sweeper, file retention, ended
// sessions, top-up reconciliation, and the one-off jobs such as Stripe's events) in a process of their own, for
// deployments that run the API with JOBS=worker. It takes jobs from the same
// Redis queues as every other worker, so any number may run; each job (or
// occurrence of a recurring one) runs once. SIGTERM lets the jobs in hand
// finish, then exits 0.
import { ConfigError, loadConfig } from "./config.js";
import { createPlatform } from "./platform.js";
import { explainDatabaseFailure, refuseToStart } from "./start-checks.js";

async function start() {
  const config = loadConfig();
  if (!config.redis) throw new ConfigError("npm run worker needs REDIS_URL: it takes the jobs from a queue in Redis.");
  if (config.database.kind !== "postgres") throw new ConfigError("npm run worker needs DATABASE_URL: the embedded database belongs to the API process.");
  const platform = await createPlatform({ ...config, runsSharedJobs: true }).catch((error: unknown) => {
    throw explainDatabaseFailure(error, config.database);
  });
  return platform;
}

const platform = await start().catch(refuseToStart("SentX worker"));
const JOBS_RUN = "hold sweeper, file retention, ended sessions, top-up reconciliation, Stripe events";
platform.logger.info({}, `worker running: ${JOBS_RUN}`);
process.stderr.write(`SentX worker running (${JOBS_RUN}). Stop it with SIGTERM or Ctrl-C.\n`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) process.exit(1);
  stopping = true;
  platform.logger.info({ signal }, "worker stopping: finishing the job in hand");
  await platform.close();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
