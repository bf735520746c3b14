#!/usr/bin/env bats
# scripts/restore against the stub docker command (tests/deploy/stubs).

load helpers

setup() {
  common_setup
  HOSTDIR=$BATS_TEST_TMPDIR/host
  mkdir -p "$HOSTDIR/backups"
  cp "$REPO_ROOT/docker-compose.cloudflare.yml" "$HOSTDIR/"
  cp "$REPO_ROOT/scripts/restore" "$HOSTDIR/restore"
  printf 'PGDMP\001\016\000 a fake custom-format dump\n' >"$HOSTDIR/backups/pre-deploy-x.dump"
}

@test "restore --yes takes a safety dump, stops the app, recreates the database, starts the app" {
  run "$HOSTDIR/restore" --yes "$HOSTDIR/backups/pre-deploy-x.dump"
  assert_status 0
  assert_call_order \
    '^docker compose -p ticketing -f docker-compose.cloudflare.yml exec -T db pg_dump -Fc -U ticketing -d ticketing$' \
    '^docker compose .* stop app backup$' \
    'DROP DATABASE IF EXISTS ticketing WITH \(FORCE\)' \
    '^docker compose .* exec -T db pg_restore .*-d ticketing$' \
    '^docker compose .* up -d app backup$'
  # the dump went into pg_restore's standard input
  [ "$(cat "$STUB_LOG.stdin")" -gt 0 ]
  ls "$HOSTDIR"/backups/pre-restore-*.dump
  assert_output_has "restored $HOSTDIR/backups/pre-deploy-x.dump"
  assert_output_has "start the app (ticketing:current)"
}

@test "restore takes a dump from the backups volume by name" {
  run "$HOSTDIR/restore" --yes ticketing-20261122T000000Z.dump
  assert_status 0
  assert_call_order \
    'exec -T backup test -f /backups/ticketing-20261122T000000Z.dump' \
    'exec -T backup cat /backups/ticketing-20261122T000000Z.dump' \
    ' stop app backup$' \
    'pg_restore' \
    ' up -d app backup$'
  # the copy it restored from is cleaned up
  run find "$HOSTDIR/backups" -name '.restore.*'
  [ -z "$output" ]
}

@test "restore refuses without --yes when nobody can answer the prompt" {
  run "$HOSTDIR/restore" "$HOSTDIR/backups/pre-deploy-x.dump" </dev/null
  assert_status 2
  assert_output_has "not confirmed"
  run grep -c -E ' (stop|pg_restore|up) ' "$STUB_LOG"
  [ "$output" = 0 ]
}

@test "restore refuses a file that is not a pg_dump -Fc dump" {
  printf 'SELECT 1;\n' >"$BATS_TEST_TMPDIR/plain.sql"
  run "$HOSTDIR/restore" --yes "$BATS_TEST_TMPDIR/plain.sql"
  assert_status 2
  assert_output_has "not a pg_dump custom-format"
  assert_no_calls
}

@test "restore of a missing file fails without touching anything" {
  run "$HOSTDIR/restore" --yes "$BATS_TEST_TMPDIR/nope/x.dump"
  assert_status 2
  assert_output_has "no such file"
  assert_no_calls
}

@test "a failing pg_restore leaves the app stopped and says how to go back" {
  STUB_DOCKER_FAIL_MATCH=pg_restore run "$HOSTDIR/restore" --yes "$HOSTDIR/backups/pre-deploy-x.dump"
  [ "$status" -ne 0 ]
  assert_output_has "RESTORE FAILED"
  assert_output_has "restore --yes $HOSTDIR/backups/pre-restore-"
  run grep -c ' up -d app' "$STUB_LOG"
  [ "$output" = 0 ]
}
