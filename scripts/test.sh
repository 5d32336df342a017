#!/usr/bin/env bash
# The test command (`npm test`): sets up everything the suite needs on a
# fresh machine, then type-checks and runs vitest. Extra arguments go to
# `vitest run` (e.g. `npm test -- test/unit`).
#
# Services (each: the configured URL if it works, else the machine's default,
# else a throwaway instance in a temp dir that is removed on exit):
#   SENTX_TEST_DATABASE_URL  PostgreSQL admin connection (may CREATE DATABASE)
#   SENTX_TEST_REDIS_URL     Redis
#   SENTX_TEST_CLAMD_URL     ClamAV clamd, tcp://host:port
# and SENTX_TEST_CHROMIUM, the browser the dashboard's tests drive (Debian's
# chromium package).
# A configured URL that does not work is reported and replaced by a
# throwaway instance (the machine's default is only tried when unset).
# Missing server packages are installed with apt-get when running as root.
# Progress lines start with [test-env] and go to stderr.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

# shellcheck source=SCRIPTDIR/provision/common.sh
source scripts/provision/common.sh
# shellcheck source=SCRIPTDIR/provision/postgres.sh
source scripts/provision/postgres.sh
# shellcheck source=SCRIPTDIR/provision/redis.sh
source scripts/provision/redis.sh
# shellcheck source=SCRIPTDIR/provision/clamd.sh
source scripts/provision/clamd.sh
# shellcheck source=SCRIPTDIR/provision/chromium.sh
source scripts/provision/chromium.sh

# Runs on every exit (success, failure, Ctrl-C): stop what we started,
# delete the temp dir, keep the exit code of whatever ended the script.
on_exit() {
  local rc=$?
  set +e
  trap - INT TERM HUP
  clamd_stop_throwaway
  redis_stop_throwaway
  pg_stop_throwaway
  if [[ -n $TEST_ENV_TMP ]]; then
    rm -rf "$TEST_ENV_TMP"
  fi
  exit "$rc"
}
trap on_exit EXIT
# Turn signals into a normal exit so the EXIT trap runs (128 + signal).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# npm ci reinstalls node_modules exactly as the lockfile says (and applies
# patches/ on postinstall); only when node_modules is missing or predates the
# lockfile or a patch (npm writes node_modules/.package-lock.json on every install).
ensure_node_modules() {
  local marker=node_modules/.package-lock.json
  [[ ! -f $marker || package-lock.json -nt $marker || -n $(find patches -newer "$marker" 2>/dev/null) ]] || return 0
  local started npm_log
  started=$(now)
  ensure_test_env_tmp
  npm_log="$TEST_ENV_TMP/npm.log"
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >"$npm_log" 2>&1 || {
    tail -n 30 "$npm_log" >&2
    die "npm ci failed"
  }
  log "npm dependencies installed in $(elapsed_since "$started")"
}

ensure_node_modules
provision_postgres
provision_redis
provision_clamd
provision_chromium

# The browser tests drive the built dashboard: built here, before any test file runs, so none of them
# sees web/dist half-written (test/support/browser.ts builds it too when vitest is run by hand).
log "building the web dashboard (npm run web:build)"
ensure_test_env_tmp
npm run --silent web:build >"$TEST_ENV_TMP/web-build.log" 2>&1 || {
  tail -n 30 "$TEST_ENV_TMP/web-build.log" >&2
  die "the web dashboard did not build"
}

log "type-checking (tsc --noEmit; web/ has a browser config of its own)"
npx --no -- tsc --noEmit -p tsconfig.json
npx --no -- tsc --noEmit -p web
log "running the test suite (vitest run${*:+ $*})"
ensure_test_env_tmp
results="$TEST_ENV_TMP/vitest.json"
status=0
npx --no -- vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
# One plain closing line, "N passed, N failed", that any CI reader understands.
if [[ -s $results ]]; then
  node -e 'const r = require(process.argv[1]);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);' "$results"
fi
exit "$status"
