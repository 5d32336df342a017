# shellcheck shell=bash
# Redis for the tests: an existing server if it answers PING, otherwise a
# throwaway redis-server on a free loopback port, killed on exit.
# Exports SENTX_TEST_REDIS_URL.

readonly REDIS_DEFAULT_URL="redis://127.0.0.1:6379"
REDIS_PIDFILE=""   # set once a throwaway server was launched, so cleanup knows

# redis-cli understands the whole URL (password, db); without it, a bare
# RESP PING over bash's /dev/tcp is enough for an unauthenticated server.
redis_answers() {
  local url=$1 host port
  if command -v redis-cli >/dev/null; then
    [[ $(timeout 5 redis-cli -u "$url" ping 2>/dev/null) == PONG ]]
    return
  fi
  read -r host port < <(url_host_port "$url" 6379) || return 1
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "PING\r\n" >&3
    read -r -t 3 line <&3 || exit 1
    [[ $line == +PONG* ]]' "$host" "$port" 2>/dev/null
}

redis_start_throwaway() {
  local started port dir
  started=$(now)
  port=$(free_port)
  ensure_test_env_tmp
  dir="$TEST_ENV_TMP/redis"
  mkdir -p "$dir"
  REDIS_PIDFILE="$dir/redis.pid"
  # Nothing persisted: the data is worthless once the tests end.
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$REDIS_PIDFILE" --dir "$dir" --logfile "$dir/redis.log" ||
    die "redis-server failed to launch"
  SENTX_TEST_REDIS_URL="redis://127.0.0.1:$port"
  wait_until 30 redis_answers "$SENTX_TEST_REDIS_URL" || {
    tail -n 20 "$dir/redis.log" >&2
    die "throwaway redis-server did not answer PING within 30 s"
  }
  log "Redis: throwaway redis-server ($(redis-server --version | awk '{print $3}' | sed 's/^v=//')) at $SENTX_TEST_REDIS_URL, ready in $(elapsed_since "$started")"
}

# Called from the EXIT trap; safe to call when nothing was started.
redis_stop_throwaway() {
  [[ -n $REDIS_PIDFILE ]] || return 0
  # The daemonized server writes its pidfile a moment after forking.
  wait_until 5 test -s "$REDIS_PIDFILE" || return 0
  local pid
  pid=$(<"$REDIS_PIDFILE")
  kill "$pid" 2>/dev/null || return 0
  wait_until 10 bash -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
  log "Redis: throwaway redis-server stopped"
}

# The Redis-outage tests start and kill a redis-server of their own.
ensure_redis_server_binary() {
  command -v redis-server >/dev/null || apt_install redis-server
  SENTX_TEST_REDIS_SERVER=$(command -v redis-server)
  export SENTX_TEST_REDIS_SERVER
}

provision_redis() {
  ensure_redis_server_binary
  use_or_start_service Redis SENTX_TEST_REDIS_URL "$REDIS_DEFAULT_URL" redis_answers redis_start_throwaway
}
