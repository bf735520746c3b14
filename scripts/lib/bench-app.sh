# shellcheck shell=bash
# The release app on 127.0.0.1 over a throwaway database with demo data, for scripts/bench
# and scripts/abuse. After bench_app_start PORT [LOG]: $app is its pid, $url its database,
# and an EXIT trap stops it and drops the database. Uses BENCH_DATABASE_URL (an admin URL)
# when set, else the private cluster in target/pg-bench.
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh

bench_app_start() {
  local port=$1 log=${2:-target/bench-app.log}
  admin_url=${BENCH_DATABASE_URL:-$(start_private_pg target/pg-bench 54327 dev)}
  db=bench_$$
  psql "$admin_url" -qc "CREATE DATABASE $db" >/dev/null
  url=$(with_db "$admin_url" "$db")
  cargo build --release --locked --quiet --bin ticketing
  bin=target/release/ticketing
  export APP_ENV=local DATABASE_URL="$url" PORT="$port" BASE_URL="http://127.0.0.1:$port" LOG_LEVEL=warn
  "$bin" seed >/dev/null
  "$bin" serve >"$log" 2>&1 &
  app=$!
  trap bench_app_stop EXIT
  local _
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the app did not answer /healthz; its log is $log" >&2
  return 1
}

bench_app_stop() {
  kill "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
