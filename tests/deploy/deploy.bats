#!/usr/bin/env bats
# deploy.sh against stub ssh, scp, docker and aws commands that record their calls
# (tests/deploy/stubs). Run: bats tests/deploy (or scripts/test-deploy for every check).

load helpers

setup() {
  common_setup
}

deploy() {
  run "$REPO_ROOT/deploy.sh" "$@"
}

# ---------------------------------------------------------------------------------------------
# A good deploy

@test "a good deploy builds, ships, backs up, migrates, starts and checks health, in that order" {
  deploy
  assert_status 0
  # docker save and ssh ... docker load run side by side in one pipeline: either may log first
  assert_call_order \
    '^docker build .*-t ticketing:abc1234 ' \
    '^docker save ticketing:abc1234$' \
    '^scp .*\.env\.production'
  assert_call_order \
    '^docker build .*-t ticketing:abc1234 ' \
    '^ssh .*gunzip -c \| docker load$' \
    '^scp .*\.env\.production' \
    '^ssh .*tee previous_image' \
    '^ssh .*exec -T db pg_dump -Fc' \
    '^ssh .*TICKETING_IMAGE=ticketing:abc1234 docker compose .*run --rm -T app migrate' \
    '^ssh .*TICKETING_IMAGE=ticketing:abc1234 docker compose .* up -d' \
    '^ssh .*curl -fsk .*https://127.0.0.1/healthz' \
    '^ssh .*docker tag ticketing:abc1234 ticketing:latest'
  # the image went through the pipe into "docker load"
  [ "$(cat "$STUB_LOG.stdin")" -gt 0 ]
  # no rollback, no AWS call without --snapshot/--firewall
  run grep -c 'ticketing:previous docker compose' "$STUB_LOG"
  [ "$output" = 0 ]
  run grep -c '^aws ' "$STUB_LOG"
  [ "$output" = 0 ]
}

@test "a good deploy prints every step with its number and the time it took" {
  deploy
  assert_status 0
  local n
  for n in 1 2 3 4 5 6 7 8 9 10; do
    assert_output_has "==> [$n/10]"
  done
  assert_output_has "[2/10] build ticketing:abc1234: done in "
  assert_output_has "[3/10] Lightsail snapshot: skipped (no --snapshot)"
  assert_output_has "previous image: ticketing:old123"
  assert_output_has "deployed ticketing:abc1234 to deploy@127.0.0.1"
}

@test "the certificates, the password file and the restore script are shipped" {
  deploy
  assert_status 0
  call_line "^scp .*/certs/origin.pem .*/certs/origin.key deploy@127.0.0.1:/opt/ticketing/certs/$" >/dev/null
  call_line "^scp .*/secrets/postgres_password deploy@127.0.0.1:/opt/ticketing/secrets/$" >/dev/null
  call_line "^scp .*/docker-compose.cloudflare.yml .*/\.env\.production .*/scripts/restore deploy@127.0.0.1:/opt/ticketing/$" >/dev/null
}

@test "DEPLOY_DIR, --host and --ssh-key are used for every remote call" {
  printf 'fake key\n' >"$BATS_TEST_TMPDIR/id_test"
  DEPLOY_DIR=/srv/tickets deploy --host ops@127.0.0.2 --ssh-key "$BATS_TEST_TMPDIR/id_test"
  assert_status 0
  run grep -E '^(ssh|scp) ' "$STUB_LOG"
  [ -n "$output" ]
  run grep -E '^(ssh|scp) ' "$STUB_LOG"
  while IFS= read -r line; do
    [[ $line == *"-i $BATS_TEST_TMPDIR/id_test"* ]] || {
      echo "no -i: $line" >&2
      return 1
    }
    [[ $line == *"ops@127.0.0.2"* ]] || {
      echo "wrong host: $line" >&2
      return 1
    }
  done <<<"$output"
  call_line '^ssh .*cd /srv/tickets && TICKETING_IMAGE=ticketing:abc1234 .* up -d' >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Failures after the checks

@test "a failing health check rolls back to the previous image and exits non-zero" {
  STUB_HEALTH=fail deploy
  assert_status 1
  assert_call_order \
    '^ssh .*TICKETING_IMAGE=ticketing:abc1234 docker compose .* up -d' \
    '^ssh .*healthz' \
    '^ssh .*docker compose .* logs --no-color --tail 60 app' \
    '^ssh .*TICKETING_IMAGE=ticketing:previous docker compose .* up -d app'
  assert_output_has "ROLL BACK"
  assert_output_has "ROLLED BACK to ticketing:old123"
  assert_output_has "did not become healthy"
  assert_output_has "THE PREVIOUS VERSION IS NOT HEALTHY EITHER"
  # the new image is not recorded as current
  run grep -c 'docker tag ticketing:abc1234 ticketing:latest' "$STUB_LOG"
  [ "$output" = 0 ]
}

@test "after a rollback the health of the previous version is checked and reported" {
  STUB_HEALTH=fail-until-rollback deploy
  assert_status 1
  assert_output_has "ROLLED BACK to ticketing:old123 (ticketing:previous): the previous version is healthy again"
  assert_output_has "pre-deploy backup"
  assert_call_order \
    '^ssh .*TICKETING_IMAGE=ticketing:previous docker compose .* up -d app' \
    '^ssh .*healthz'
}

@test "a failing health check on a first deploy says there is nothing to roll back to" {
  STUB_HEALTH=fail STUB_PREVIOUS_IMAGE='' deploy
  assert_status 1
  assert_output_has "first deploy"
  assert_output_has "NO ROLLBACK"
  run grep -c 'ticketing:previous docker compose' "$STUB_LOG"
  [ "$output" = 0 ]
}

@test "a failing 'docker compose up' rolls back too" {
  STUB_SSH_FAIL_MATCH='TICKETING_IMAGE=ticketing:abc1234 docker compose -p ticketing -f docker-compose.cloudflare.yml up -d' deploy
  assert_status 1
  assert_output_has "ROLLED BACK to ticketing:old123"
}

@test "failing migrations stop the deploy before the new version starts" {
  STUB_SSH_FAIL_MATCH='app migrate' deploy
  assert_status 1
  assert_output_has "the migrations of ticketing:abc1234 failed"
  assert_output_has "The running version was not changed"
  run grep -c -- ' up -d' "$STUB_LOG"
  [ "$output" = 0 ]
}

@test "a failing pre-deploy backup stops the deploy before migrating" {
  STUB_SSH_FAIL_MATCH='pg_dump' deploy
  assert_status 1
  assert_output_has "DEPLOY FAILED at step 6/10"
  assert_output_has "The running site was not changed"
  run grep -c -- 'app migrate' "$STUB_LOG"
  [ "$output" = 0 ]
}

@test "a failing build stops before anything remote" {
  STUB_DOCKER_FAIL_MATCH='build' deploy
  assert_status 1
  assert_output_has "DEPLOY FAILED at step 2/10"
  run grep -c -E '^(ssh|scp|aws) ' "$STUB_LOG"
  [ "$output" = 0 ]
}

# ---------------------------------------------------------------------------------------------
# Bad inputs fail before any call

@test "a missing .env.production fails before any call" {
  rm "$PROJ/.env.production"
  deploy
  assert_status 2
  assert_output_has ".env.production is missing"
  assert_no_calls
}

@test "a missing SECRET_KEY fails before any call" {
  set_env SECRET_KEY
  deploy
  assert_status 2
  assert_output_has "SECRET_KEY is missing or empty"
  assert_no_calls
}

@test "an empty SECRET_KEY fails before any call" {
  set_env SECRET_KEY ""
  deploy
  assert_status 2
  assert_output_has "SECRET_KEY is missing or empty"
  assert_no_calls
}

@test "a short SECRET_KEY fails before any call" {
  set_env SECRET_KEY abc
  deploy
  assert_status 2
  assert_output_has "SECRET_KEY is too short"
  assert_no_calls
}

@test "an http BASE_URL fails before any call" {
  set_env BASE_URL http://tickets.test
  deploy
  assert_status 2
  assert_output_has "BASE_URL must start with https://"
  assert_no_calls
}

@test "PAYPAL_MODE=simulator fails before any call" {
  set_env PAYPAL_MODE simulator
  deploy
  assert_status 2
  assert_output_has "PAYPAL_MODE is simulator"
  assert_no_calls
}

@test "a missing PAYPAL_MODE fails before any call" {
  set_env PAYPAL_MODE
  deploy
  assert_status 2
  assert_output_has "PAYPAL_MODE is missing or empty"
  assert_no_calls
}

@test "APP_ENV other than production fails before any call" {
  set_env APP_ENV local
  deploy
  assert_status 2
  assert_output_has "APP_ENV must be production"
  assert_no_calls
}

@test "a missing DATABASE_URL fails before any call" {
  set_env DATABASE_URL
  deploy
  assert_status 2
  assert_output_has "DATABASE_URL is missing or empty"
  assert_no_calls
}

@test "a DATABASE_URL password that differs from secrets/postgres_password fails before any call" {
  set_env DATABASE_URL postgres://ticketing:other@db:5432/ticketing
  deploy
  assert_status 2
  assert_output_has "differs from secrets/postgres_password"
  assert_no_calls
}

@test "quoted values and comments in .env.production are read like docker compose reads them" {
  set_env BASE_URL '"https://tickets.test"'
  set_env PAYPAL_MODE "live   # real money"
  set_env SECRET_KEY "'$GOOD_SECRET_KEY'"
  deploy --dry-run
  assert_status 0
}

@test "a missing certificate or key fails before any call" {
  rm "$PROJ/certs/origin.key"
  : >"$PROJ/certs/origin.pem"
  deploy
  assert_status 2
  assert_output_has "certs/origin.pem is missing"
  assert_output_has "certs/origin.key is missing"
  assert_no_calls
}

@test "TLS_CLIENT_CA_FILE must name a file present in certs/" {
  set_env TLS_CLIENT_CA_FILE /certs/origin-pull-ca.pem
  deploy
  assert_status 2
  assert_output_has "certs/origin-pull-ca.pem is missing"
  assert_no_calls

  printf -- '-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n' >"$PROJ/certs/origin-pull-ca.pem"
  deploy
  assert_status 0
  call_line '^scp .*/certs/origin-pull-ca.pem .*:/opt/ticketing/certs/$' >/dev/null
}

@test "a missing compose file or database password file fails before any call" {
  rm "$PROJ/docker-compose.cloudflare.yml" "$PROJ/secrets/postgres_password"
  deploy
  assert_status 2
  assert_output_has "docker-compose.cloudflare.yml is missing"
  assert_output_has "secrets/postgres_password is missing"
  assert_no_calls
}

@test "no host fails before any call" {
  unset DEPLOY_HOST
  deploy
  assert_status 2
  assert_output_has "no host"
  assert_no_calls
}

@test "a missing ssh key file fails before any call" {
  deploy --ssh-key "$BATS_TEST_TMPDIR/nope"
  assert_status 2
  assert_output_has "ssh key $BATS_TEST_TMPDIR/nope"
  assert_no_calls
}

@test "all problems are reported at once" {
  set_env SECRET_KEY
  set_env BASE_URL http://tickets.test
  set_env PAYPAL_MODE simulator
  deploy
  assert_status 2
  assert_output_has "SECRET_KEY is missing"
  assert_output_has "BASE_URL must start with https://"
  assert_output_has "PAYPAL_MODE is simulator"
}

@test "an unknown option exits 2 without any call" {
  deploy --frobnicate
  assert_status 2
  assert_output_has "unknown argument: --frobnicate"
  assert_no_calls
}

@test "--firewall without SSH_ALLOWED_CIDR or LIGHTSAIL_INSTANCE fails before any call" {
  deploy --firewall
  assert_status 2
  assert_output_has "LIGHTSAIL_INSTANCE"
  assert_output_has "SSH_ALLOWED_CIDR"
  assert_no_calls
}

@test "a bad line in config/cloudflare-ips.txt fails before any call" {
  printf '10.0.0.0/33\n' >>"$PROJ/config/cloudflare-ips.txt"
  deploy
  assert_status 2
  assert_output_has "not an IPv4 or IPv6 network"
  assert_no_calls
}

# ---------------------------------------------------------------------------------------------
# --dry-run

@test "--dry-run prints every command and runs none" {
  deploy --dry-run
  assert_status 0
  assert_no_calls
  assert_output_has "DRY-RUN: docker build --platform linux/amd64 --target runtime -t ticketing:abc1234 "
  assert_output_has "DRY-RUN: docker save ticketing:abc1234 | gzip -c | ssh "
  assert_output_has "docker load"
  assert_output_has "DRY-RUN: scp "
  assert_output_has "pg_dump -Fc"
  assert_output_has "run --rm -T app migrate"
  assert_output_has "TICKETING_IMAGE=ticketing:abc1234 docker compose -p ticketing -f docker-compose.cloudflare.yml up -d"
  assert_output_has "curl -fsk --max-time 5 -o /dev/null https://127.0.0.1/healthz"
  assert_output_has "nothing was run"
}

@test "--dry-run with --snapshot and --firewall prints the aws commands with Cloudflare's ranges" {
  LIGHTSAIL_INSTANCE=tickets-1 SSH_ALLOWED_CIDR=127.0.0.1/32 AWS_REGION=eu-central-1 \
    deploy --dry-run --snapshot --firewall
  assert_status 0
  assert_no_calls
  assert_output_has "DRY-RUN: aws lightsail create-instance-snapshot --region eu-central-1 --instance-name tickets-1 --instance-snapshot-name tickets-1-before-abc1234-"
  assert_output_has "DRY-RUN: aws lightsail put-instance-public-ports --region eu-central-1 --instance-name tickets-1 --port-infos"
  assert_output_has '"fromPort":443,"toPort":443,"protocol":"tcp","cidrs":["173.245.48.0/20",'
  assert_output_has '"ipv6Cidrs":["2400:cb00::/32",'
  assert_output_has '{"fromPort":22,"toPort":22,"protocol":"tcp","cidrs":["127.0.0.1/32"],"ipv6Cidrs":[]}'
}

@test "--dry-run still refuses bad settings" {
  set_env BASE_URL http://tickets.test
  deploy --dry-run
  assert_status 2
  assert_no_calls
}

# ---------------------------------------------------------------------------------------------
# Lightsail

@test "--snapshot and --firewall call aws before shipping anything" {
  LIGHTSAIL_INSTANCE=tickets-1 SSH_ALLOWED_CIDR="127.0.0.1/32, ::1/128" deploy --snapshot --firewall
  assert_status 0
  assert_call_order \
    '^docker build ' \
    '^aws lightsail create-instance-snapshot --instance-name tickets-1 ' \
    '^aws lightsail put-instance-public-ports --instance-name tickets-1 --port-infos ' \
    '^ssh .*docker load'
  run grep '^aws lightsail put-instance-public-ports' "$STUB_LOG"
  [[ $output == *'"cidrs":["127.0.0.1/32"],"ipv6Cidrs":["::1/128"]'* ]]
  [[ $output == *'"131.0.72.0/22"'* ]]
  [[ $output == *'"2c0f:f248::/32"'* ]]
}

@test "PAYPAL_MODE=sandbox fails before any call (the app takes only live in production)" {
  set_env PAYPAL_MODE sandbox
  deploy
  assert_status 2
  assert_output_has "accepts only live"
  assert_no_calls
}

@test "a missing SMTP_HOST fails before any call" {
  set_env SMTP_HOST
  deploy
  assert_status 2
  assert_output_has "SMTP_HOST is missing or empty"
  assert_no_calls
}
