// Where the test command's services are (scripts/test.sh exports these; the
// defaults are this machine's own services for running vitest directly).
export const testEnv = {
  adminDatabaseUrl: process.env.SENTX_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  redisUrl: process.env.SENTX_TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
  /** A redis-server binary, for tests that start and kill a Redis of their own. */
  redisServer: process.env.SENTX_TEST_REDIS_SERVER ?? "redis-server",
  clamdUrl: process.env.SENTX_TEST_CLAMD_URL ?? "tcp://127.0.0.1:3310",
  /** The Chromium binary the dashboard's browser tests drive (Debian's chromium package). */
  chromium: process.env.SENTX_TEST_CHROMIUM ?? "/usr/bin/chromium",
};
