# shellcheck shell=bash
# ClamAV's clamd for the tests: an existing daemon if it answers PING,
# otherwise a throwaway clamd on a free loopback port, killed on exit.
# The throwaway one loads only the signatures the repo ships in
# test/fixtures/clamav (the EICAR test signature), so it starts in a second
# and never needs the network (freshclam's downloads are unreachable in CI).
# Exports SENTX_TEST_CLAMD_URL (tcp://host:port). Never skipped: the upload
# scanning tests need a real clamd, so failing to get one fails the run.

readonly CLAMD_DEFAULT_URL="tcp://127.0.0.1:3310"
CLAMD_PID=""   # set once a throwaway clamd was launched, so cleanup knows

# clamd protocol: "zPING\0" is answered with "PONG\0".
clamd_answers() {
  local host port
  read -r host port < <(url_host_port "$1" 3310) || return 1
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "zPING\0" >&3
    IFS= read -r -d "" -t 3 reply <&3 || exit 1
    [[ $reply == PONG ]]' "$host" "$port" 2>/dev/null
}

# Debian puts clamd in /usr/sbin, which a non-root PATH may lack.
find_clamd() {
  command -v clamd 2>/dev/null || { [[ -x /usr/sbin/clamd ]] && echo /usr/sbin/clamd; } || true
}

clamd_start_throwaway() {
  local started clamd port dir db_dir
  started=$(now)
  clamd=$(find_clamd)
  if [[ -z $clamd ]]; then
    apt_install clamav-daemon
    clamd=$(find_clamd)
    [[ -n $clamd ]] || die "installed clamav-daemon but found no clamd"
  fi
  db_dir="$REPO_ROOT/test/fixtures/clamav"
  [[ -f $db_dir/eicar.hdb ]] || die "missing signature database $db_dir/eicar.hdb"
  port=$(free_port)
  ensure_test_env_tmp
  dir="$TEST_ENV_TMP/clamd"
  mkdir -p "$dir/tmp"

  # Runs as whoever runs the tests (root in CI: no User line, so clamd keeps
  # root and can read the repo's signature dir wherever the clone is).
  # Limits match what the platform accepts for uploads (30 MB).
  cat >"$dir/clamd.conf" <<EOF
Foreground yes
TCPSocket $port
TCPAddr 127.0.0.1
DatabaseDirectory $db_dir
TemporaryDirectory $dir/tmp
LogFile $dir/clamd.log
LogTime yes
PidFile $dir/clamd.pid
StreamMaxLength 30M
MaxFileSize 30M
MaxScanSize 30M
EOF
  # In the foreground of a background job, so we hold its pid directly.
  "$clamd" --config-file="$dir/clamd.conf" >>"$dir/clamd.out" 2>&1 &
  CLAMD_PID=$!
  SENTX_TEST_CLAMD_URL="tcp://127.0.0.1:$port"
  # Loading signatures can take a few seconds on a slow machine.
  if ! wait_until 60 clamd_alive_and_answering; then
    tail -n 20 "$dir/clamd.out" >&2
    die "throwaway clamd did not answer PING within 60 s"
  fi
  log "ClamAV: throwaway clamd ($("$clamd" --version | cut -d/ -f1)) at $SENTX_TEST_CLAMD_URL with signatures from test/fixtures/clamav, ready in $(elapsed_since "$started")"
}

# Returns 2 (wait_until stops waiting) if clamd already exited, e.g. on a
# bad config or an unreadable signature dir.
clamd_alive_and_answering() {
  kill -0 "$CLAMD_PID" 2>/dev/null || {
    log "clamd exited during start-up"
    return 2
  }
  clamd_answers "$SENTX_TEST_CLAMD_URL"
}

# Called from the EXIT trap; safe to call when nothing was started.
clamd_stop_throwaway() {
  [[ -n $CLAMD_PID ]] || return 0
  kill "$CLAMD_PID" 2>/dev/null || return 0
  wait_until 10 bash -c "! kill -0 $CLAMD_PID 2>/dev/null" || kill -9 "$CLAMD_PID" 2>/dev/null
  wait "$CLAMD_PID" 2>/dev/null
  log "ClamAV: throwaway clamd stopped"
}

provision_clamd() {
  use_or_start_service ClamAV SENTX_TEST_CLAMD_URL "$CLAMD_DEFAULT_URL" clamd_answers clamd_start_throwaway
}
