# shellcheck shell=bash
# Helpers shared by the provisioning scripts that scripts/test.sh sources.
# Nothing here starts a service; it only logs, finds ports, installs Debian
# packages and keeps the throwaway state in one temp dir.

# Progress goes to stderr so it never mixes with the test runner's stdout.
log() { printf '[test-env] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

is_root() { [[ $EUID -eq 0 ]]; }

# Wall-clock timing for "ready in N s" lines (bash 5 has EPOCHREALTIME).
now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# One temp dir holds every throwaway service's data, sockets and logs, so a
# single rm -rf on exit removes them all. Created only when first needed.
# World-traversable because PostgreSQL runs as another user inside it.
# Call it directly, never in $(...): the path must land in this shell's
# TEST_ENV_TMP or the EXIT trap would not know to delete it.
TEST_ENV_TMP=""
ensure_test_env_tmp() {
  if [[ -z $TEST_ENV_TMP ]]; then
    TEST_ENV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sentx-test-env.XXXXXX")
    chmod 755 "$TEST_ENV_TMP"
  fi
}

# A port the kernel just handed out on loopback; we close it and reuse the
# number. There is a small race with other processes, acceptable for tests.
free_port() {
  node -e '
    const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Split "scheme://[user[:pw]@]host[:port][/...]" into "host port" (the port
# falls back to $2). Enough for the redis:// and tcp:// URLs we probe by hand.
url_host_port() {
  local url=$1 default_port=$2
  local re='^[a-zA-Z][a-zA-Z0-9+.-]*://([^@/]*@)?(\[[^]/]+\]|[^:/?]+)(:([0-9]+))?'
  [[ $url =~ $re ]] || return 1
  local host=${BASH_REMATCH[2]} port=${BASH_REMATCH[4]:-$default_port}
  host=${host#[}
  host=${host%]}
  printf '%s %s\n' "$host" "$port"
}

# Poll "$@" until it succeeds or $1 seconds pass. Returns 1 on timeout, or
# at once when the command returns 2 ("it will never succeed", e.g. died).
wait_until() {
  local timeout_s=$1 rc
  shift
  local deadline=$((SECONDS + timeout_s))
  while true; do
    "$@" && return 0
    rc=$?
    ((rc != 2 && SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Passwords stay out of logs.
redact_url() { sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#' <<<"$1"; }

# Install Debian packages, but only as root (CI is root; a developer who is
# not root gets told what to install instead). "apt-get update" runs once per
# script run, since a fresh machine's package lists may be empty or stale.
APT_UPDATED=""
apt_install() {
  is_root || die "need Debian package(s) '$*' and not root: install them (sudo apt-get install $*) and rerun"
  command -v apt-get >/dev/null || die "need package(s) '$*' but apt-get is not available"
  ensure_test_env_tmp
  local apt_log="$TEST_ENV_TMP/apt.log"
  log "installing Debian package(s): $* (apt-get, log in $apt_log while running)"
  if [[ -z $APT_UPDATED ]]; then
    apt-get update >>"$apt_log" 2>&1 || {
      tail -n 20 "$apt_log" >&2
      die "apt-get update failed"
    }
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    </dev/null >>"$apt_log" 2>&1 || {
    tail -n 20 "$apt_log" >&2
    die "apt-get install $* failed"
  }
}

# The one way a service is chosen: the configured URL ($var) when it answers,
# else the machine's own at default_url when it answers, else a throwaway one
# that `start` launches (and that sets $var). Exports $var either way.
#   use_or_start_service LABEL VAR DEFAULT_URL CHECK START
use_or_start_service() {
  local label=$1 var=$2 default_url=$3 check=$4 start=$5
  local configured=${!var:-}
  if [[ -n $configured ]]; then
    if "$check" "$configured"; then
      log "$label: using configured $var ($(redact_url "$configured"))"
      export "${var?}"
      return
    fi
    log "$label: configured $var ($(redact_url "$configured")) does not answer; starting a throwaway one"
  elif "$check" "$default_url"; then
    printf -v "$var" '%s' "$default_url"
    log "$label: using the machine's server at $default_url"
    export "${var?}"
    return
  else
    log "$label: nothing answers at $default_url; starting a throwaway one"
  fi
  "$start"
  export "${var?}"
}
