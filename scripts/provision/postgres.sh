# shellcheck shell=bash
# PostgreSQL for the tests: an existing server if one is usable, otherwise a
# throwaway cluster in the temp dir, stopped and deleted on exit.
# Exports SENTX_TEST_DATABASE_URL: an admin connection the tests use to
# CREATE and DROP their own databases.

readonly PG_DEFAULT_URL="postgres://postgres@127.0.0.1:5432/postgres"
PG_BINDIR=""   # /usr/lib/postgresql/<version>/bin
PG_DATA=""     # set once a throwaway cluster exists, so cleanup knows
PG_RUN_AS=""   # the non-root user that owns the throwaway cluster (if root)

# Usable = we can connect and our role may create databases. Uses the
# project's own driver (node_modules is installed before this runs), so it
# needs no psql on the machine.
pg_usable() {
  # shellcheck disable=SC2016 # JavaScript template literal, not shell
  node --input-type=module -e '
    import postgres from "postgres";
    const sql = postgres(process.argv[1], { connect_timeout: 5, max: 1, onnotice() {} });
    try {
      const [row] = await sql`select rolsuper or rolcreatedb as ok from pg_roles where rolname = current_user`;
      if (!row?.ok) { console.error("role cannot CREATE DATABASE"); process.exitCode = 2; }
    } catch (e) {
      console.error(e.message); process.exitCode = 1;
    } finally {
      await sql.end({ timeout: 1 });
    }' "$1" 2>/dev/null
}

# Sets PG_BINDIR to the newest installed server binaries (Debian layout),
# installing Debian's postgresql package first if there are none.
find_pg_bindir() {
  local initdb
  initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
  if [[ -x $initdb ]]; then PG_BINDIR=$(dirname "$initdb"); else PG_BINDIR=""; fi
}
ensure_pg_binaries() {
  find_pg_bindir
  [[ -z $PG_BINDIR ]] || return 0
  apt_install postgresql
  find_pg_bindir
  [[ -n $PG_BINDIR ]] || die "installed postgresql but found no /usr/lib/postgresql/*/bin/initdb"
}

# initdb refuses to run as root, so as root the cluster belongs to the
# "postgres" user (Debian's package creates it), or a system user we create.
pg_pick_user() {
  is_root || return 0
  if id postgres >/dev/null 2>&1; then
    PG_RUN_AS=postgres
  else
    id sentx-test >/dev/null 2>&1 ||
      useradd --system --no-create-home --shell /usr/sbin/nologin sentx-test
    PG_RUN_AS=sentx-test
  fi
}

# Run a command as the cluster's owner, from a directory that user can read
# (the repo may not be readable by it, and initdb/pg_ctl complain then).
pg_as_owner() {
  if [[ -n $PG_RUN_AS ]]; then
    (cd "$(dirname "$PG_DATA")" && runuser -u "$PG_RUN_AS" -- "$@")
  else
    (cd "$(dirname "$PG_DATA")" && "$@")
  fi
}

pg_start_throwaway() {
  local started port dir
  started=$(now)
  ensure_pg_binaries
  pg_pick_user
  port=$(free_port)
  ensure_test_env_tmp
  dir="$TEST_ENV_TMP/postgres"
  mkdir -p "$dir/socket"
  [[ -z $PG_RUN_AS ]] || chown -R "$PG_RUN_AS" "$dir"
  PG_DATA="$dir/data"

  # Trust auth on loopback and the socket: nothing else can reach it, and
  # tests connect without passwords. The "postgres" superuser can CREATE DATABASE.
  pg_as_owner "$PG_BINDIR/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --no-locale \
    --no-sync >"$dir/initdb.log" 2>&1 || {
    tail -n 20 "$dir/initdb.log" >&2
    die "initdb failed"
  }
  # Durability is pointless for a cluster deleted on exit; turning it off
  # makes the tests' many CREATE DATABASEs much faster.
  cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- throwaway test cluster (scripts/provision/postgres.sh) ---
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$dir/server.log" -w -t 60 start >/dev/null || {
    tail -n 20 "$dir/server.log" >&2
    die "throwaway PostgreSQL did not start"
  }
  SENTX_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  pg_usable "$SENTX_TEST_DATABASE_URL" || die "throwaway PostgreSQL started but is not usable"
  log "PostgreSQL: throwaway cluster ($("$PG_BINDIR/postgres" --version | awk '{print $3}')) at $SENTX_TEST_DATABASE_URL, data in $PG_DATA, ready in $(elapsed_since "$started")"
}

# Called from the EXIT trap; safe to call when nothing was started.
pg_stop_throwaway() {
  [[ -n $PG_DATA && -d $PG_DATA ]] || return 0
  pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1
  log "PostgreSQL: throwaway cluster stopped"
}

provision_postgres() {
  # "Answers" means usable: reachable and allowed to CREATE DATABASE.
  use_or_start_service PostgreSQL SENTX_TEST_DATABASE_URL "$PG_DEFAULT_URL" pg_usable pg_start_throwaway
}
