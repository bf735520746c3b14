# shellcheck shell=bash
# $output and $status are set by bats' run:
# shellcheck disable=SC2154
# Shared by the deploy tests: a throwaway project directory with valid production settings,
# stub ssh/scp/docker/aws/curl first on PATH, and helpers to read what they recorded.
# Nothing here contacts a network or a Docker engine.

REPO_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

# 88 characters, like `openssl rand -base64 64`.
GOOD_SECRET_KEY=c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS1ub3QtZm9yLXByb2R1Y3Rpb24tdXNlLXRoaXMtaXMtNjRieXRlcy0hIQ==

common_setup() {
  PROJ=$BATS_TEST_TMPDIR/project
  mkdir -p "$PROJ/config" "$PROJ/certs" "$PROJ/secrets" "$PROJ/scripts"
  cp "$REPO_ROOT/docker-compose.cloudflare.yml" "$REPO_ROOT/Dockerfile" "$PROJ/"
  cp "$REPO_ROOT/config/cloudflare-ips.txt" "$PROJ/config/"
  cp "$REPO_ROOT/scripts/restore" "$PROJ/scripts/"
  printf -- '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n' >"$PROJ/certs/origin.pem"
  printf -- '-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n' >"$PROJ/certs/origin.key"
  printf 's3cretpw\n' >"$PROJ/secrets/postgres_password"
  cat >"$PROJ/.env.production" <<EOF
# production settings for the tests
APP_ENV=production
DATABASE_URL=postgres://ticketing:s3cretpw@db:5432/ticketing
BASE_URL=https://tickets.test
SECRET_KEY=$GOOD_SECRET_KEY
PAYPAL_MODE=live
SMTP_HOST=smtp.example.com
MAIL_FROM=tickets@example.com
LOG_LEVEL=info
EOF

  export STUB_LOG=$BATS_TEST_TMPDIR/calls.log
  : >"$STUB_LOG"
  export PATH="$REPO_ROOT/tests/deploy/stubs:$PATH"
  export TICKETING_PROJECT_DIR=$PROJ
  export DEPLOY_TAG=abc1234
  export DEPLOY_HOST=deploy@127.0.0.1
  export HEALTH_TIMEOUT=1 HEALTH_INTERVAL=1
  unset DEPLOY_DIR DEPLOY_SSH_KEY DEPLOY_SSH_OPTS LIGHTSAIL_INSTANCE AWS_REGION SSH_ALLOWED_CIDR \
    HEALTH_URL HEALTH_CLIENT_CERT HEALTH_CLIENT_KEY STUB_HEALTH STUB_PREVIOUS_IMAGE \
    STUB_SSH_FAIL_MATCH STUB_SCP_FAIL STUB_DOCKER_PS STUB_DOCKER_FAIL_MATCH TICKETING_IMAGE
}

# Sets KEY=VALUE in the test's .env.production (replacing earlier assignments); no VALUE
# argument removes KEY.
set_env() {
  local f=$PROJ/.env.production
  grep -v "^$1=" "$f" >"$f.new" || true
  if [ $# -ge 2 ]; then printf '%s=%s\n' "$1" "$2" >>"$f.new"; fi
  mv "$f.new" "$f"
}

# Line number of the first recorded call matching the extended regex $1 (fails when none).
call_line() {
  local n
  n=$(grep -n -E -- "$1" "$STUB_LOG" | head -n 1 | cut -d: -f1)
  if [ -z "$n" ]; then
    echo "no recorded call matches: $1" >&2
    echo "--- calls:" >&2
    cat "$STUB_LOG" >&2
    return 1
  fi
  echo "$n"
}

# Passes when, for each extended regex in turn, a recorded call matching it comes after the
# call matched by the previous one.
assert_call_order() {
  local prev=0 n pattern
  for pattern in "$@"; do
    n=$(tail -n +"$((prev + 1))" "$STUB_LOG" | grep -n -E -- "$pattern" | head -n 1 | cut -d: -f1)
    if [ -z "$n" ]; then
      echo "no recorded call matching '$pattern' after line $prev; calls:" >&2
      cat -n "$STUB_LOG" >&2
      return 1
    fi
    prev=$((prev + n))
  done
}

assert_no_calls() {
  if [ -s "$STUB_LOG" ]; then
    echo "expected no ssh/scp/docker/aws call, got:" >&2
    cat "$STUB_LOG" >&2
    return 1
  fi
}

assert_output_has() {
  if [[ $output != *"$1"* ]]; then
    echo "output lacks: $1" >&2
    echo "--- output:" >&2
    echo "$output" >&2
    return 1
  fi
}

assert_status() {
  if [ "$status" -ne "$1" ]; then
    echo "exit status $status, expected $1" >&2
    echo "--- output:" >&2
    echo "$output" >&2
    return 1
  fi
}
