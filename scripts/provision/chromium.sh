# shellcheck shell=bash
# Chromium for the browser tests (test/browser), driven headless by
# playwright-core: the configured SENTX_TEST_CHROMIUM if it runs, else
# Debian's /usr/bin/chromium, else the Debian package installed with apt-get
# (Playwright's own browser downloads are not used: the machines reach only
# the package registries). Exports SENTX_TEST_CHROMIUM.

readonly CHROMIUM_DEFAULT_PATH="/usr/bin/chromium"

# Runs at all (a wrapper script left by a removed package would not).
chromium_runs() {
  [[ -x $1 ]] && timeout 30 "$1" --headless --no-sandbox --version >/dev/null 2>&1
}

provision_chromium() {
  local configured=${SENTX_TEST_CHROMIUM:-}
  if [[ -n $configured ]]; then
    if chromium_runs "$configured"; then
      log "Chromium: using configured SENTX_TEST_CHROMIUM ($configured)"
      export SENTX_TEST_CHROMIUM
      return
    fi
    log "Chromium: configured SENTX_TEST_CHROMIUM ($configured) does not run; using Debian's"
  fi
  if ! chromium_runs "$CHROMIUM_DEFAULT_PATH"; then
    local started
    started=$(now)
    # fonts-liberation is only recommended by the package, but without it pages render in whatever font is left.
    apt_install chromium fonts-liberation
    chromium_runs "$CHROMIUM_DEFAULT_PATH" || die "installed chromium but $CHROMIUM_DEFAULT_PATH does not run"
    log "Chromium: installed in $(elapsed_since "$started")"
  fi
  SENTX_TEST_CHROMIUM=$CHROMIUM_DEFAULT_PATH
  log "Chromium: using $SENTX_TEST_CHROMIUM ($("$SENTX_TEST_CHROMIUM" --headless --no-sandbox --version 2>/dev/null | head -n 1))"
  export SENTX_TEST_CHROMIUM
}
