#!/usr/bin/env bash
# Deploys the ticketing site to its Lightsail host, run by the operator from a checkout on a
# laptop (bash 3.2 or later; needs docker, ssh, scp, gzip, and aws for --snapshot/--firewall).
#
#   ./deploy.sh [--dry-run] [--host user@host] [--snapshot] [--firewall] [--ssh-key FILE]
#
#   --dry-run       check the inputs, then print every command instead of running it
#   --host H        ssh destination (or DEPLOY_HOST)
#   --ssh-key FILE  ssh identity (or DEPLOY_SSH_KEY)
#   --snapshot      take a Lightsail snapshot of LIGHTSAIL_INSTANCE before deploying
#   --firewall      set the Lightsail firewall: 443 from Cloudflare's ranges only
#                   (config/cloudflare-ips.txt) and 22 from SSH_ALLOWED_CIDR only
#
# Steps: 1 check inputs and .env.production (before anything remote), 2 build the image
# ticketing:<git sha>, 3 snapshot, 4 firewall, 5 ship the image (docker save | ssh docker load)
# and the files, 6 note the running image as the previous one and back up the database,
# 7 run migrations with the new image, 8 start it, 9 wait for /healthz, 10 record the new
# image, or roll back to the previous one (and exit 1) when it does not become healthy.
#
# Settings from the environment:
#   DEPLOY_HOST, DEPLOY_SSH_KEY   as --host and --ssh-key
#   DEPLOY_DIR                    directory on the host (default /opt/ticketing)
#   DEPLOY_TAG                    image tag (default: the git short sha, -dirty-<time> added
#                                 when tracked files have uncommitted changes)
#   DEPLOY_SSH_OPTS               extra ssh/scp options, e.g. "-o Port=2222"
#   DOCKER_PLATFORM               platform to build for (default linux/amd64)
#   LIGHTSAIL_INSTANCE, AWS_REGION   the instance for --snapshot / --firewall
#   SSH_ALLOWED_CIDR              for --firewall: networks allowed to ssh (comma-separated)
#   HEALTH_URL                    checked on the host with curl -k (default
#                                 https://127.0.0.1/healthz)
#   HEALTH_TIMEOUT, HEALTH_INTERVAL   seconds to wait for health (120) and between tries (3)
#   HEALTH_CLIENT_CERT, HEALTH_CLIENT_KEY   client certificate on the host for the health
#                                 check, when the app requires one (authenticated origin pulls)
#   PREDEPLOY_BACKUPS_KEEP        pre-deploy dumps kept on the host (default 10)
#   TICKETING_PROJECT_DIR         where .env.production, certs/, secrets/ and the compose file
#                                 are (default: the directory of this script)
# Exit status: 0 deployed (or dry run), 1 failed (rolled back when it got that far), 2 bad
# arguments or settings (nothing was run).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/cidr.sh
source "$SCRIPT_DIR/scripts/lib/cidr.sh"

PROJECT_DIR=${TICKETING_PROJECT_DIR:-$SCRIPT_DIR}
ENV_FILE=$PROJECT_DIR/.env.production
COMPOSE_NAME=docker-compose.cloudflare.yml
COMPOSE_FILE_LOCAL=$PROJECT_DIR/$COMPOSE_NAME
CF_IPS_FILE=$PROJECT_DIR/config/cloudflare-ips.txt
RESTORE_SCRIPT=$PROJECT_DIR/scripts/restore
PASSWORD_FILE=$PROJECT_DIR/secrets/postgres_password
CERT_FILE=$PROJECT_DIR/certs/origin.pem
KEY_FILE=$PROJECT_DIR/certs/origin.key
REPO=ticketing
COMPOSE_PROJECT=ticketing
DC="docker compose -p $COMPOSE_PROJECT -f $COMPOSE_NAME"

DRY_RUN=0
SNAPSHOT=0
FIREWALL=0
HOST=${DEPLOY_HOST:-}
SSH_KEY=${DEPLOY_SSH_KEY:-}
DEPLOY_DIR=${DEPLOY_DIR:-/opt/ticketing}
DOCKER_PLATFORM=${DOCKER_PLATFORM:-linux/amd64}
HEALTH_URL=${HEALTH_URL:-https://127.0.0.1/healthz}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-120}
HEALTH_INTERVAL=${HEALTH_INTERVAL:-3}
HEALTH_CLIENT_CERT=${HEALTH_CLIENT_CERT:-}
HEALTH_CLIENT_KEY=${HEALTH_CLIENT_KEY:-}
PREDEPLOY_BACKUPS_KEEP=${PREDEPLOY_BACKUPS_KEEP:-10}
LIGHTSAIL_INSTANCE=${LIGHTSAIL_INSTANCE:-}
AWS_REGION=${AWS_REGION:-}
SSH_ALLOWED_CIDR=${SSH_ALLOWED_CIDR:-}

usage() {
  awk 'NR > 1 && /^set -euo/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

die_usage() {
  echo "deploy.sh: $*" >&2
  echo "usage: ./deploy.sh [--dry-run] [--host user@host] [--snapshot] [--firewall] [--ssh-key FILE] (--help for more)" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --snapshot) SNAPSHOT=1 ;;
    --firewall) FIREWALL=1 ;;
    --host | --ssh-key)
      if [ $# -lt 2 ] || [ -z "$2" ]; then die_usage "$1 needs a value"; fi
      if [ "$1" = --host ]; then HOST=$2; else SSH_KEY=$2; fi
      shift
      ;;
    --host=*) HOST=${1#*=} ;;
    --ssh-key=*) SSH_KEY=${1#*=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die_usage "unknown argument: $1" ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------------
# Output, timing and running commands

TOTAL_STEPS=10
STEP=0
STEP_NAME=
STEP_T0=$SECONDS
START_T0=$SECONDS
REPORTED=0 # set once a failure has been explained, so the exit trap stays quiet

step() {
  STEP=$1
  STEP_NAME=$2
  STEP_T0=$SECONDS
  printf '\n==> [%s/%s] %s\n' "$STEP" "$TOTAL_STEPS" "$STEP_NAME"
}

step_done() {
  printf '    [%s/%s] %s: %s in %ss\n' "$STEP" "$TOTAL_STEPS" "$STEP_NAME" "${1:-done}" "$((SECONDS - STEP_T0))"
}

step_skip() { # number, name, reason
  step "$1" "$2"
  step_done "skipped ($3)"
}

info() { printf '    %s\n' "$*"; }

loud() {
  local line
  printf '\n' >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  for line in "$@"; do printf '!!! %s\n' "$line" >&2; done
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
}

# Fails the deploy with a message (the exit trap adds where and when).
fail() {
  loud "DEPLOY FAILED at step $STEP/$TOTAL_STEPS ($STEP_NAME): $1" "${@:2}"
  REPORTED=1
  exit 1
}

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$REPORTED" -eq 0 ] && [ "$STEP" -gt 0 ]; then
    loud "DEPLOY FAILED at step $STEP/$TOTAL_STEPS ($STEP_NAME) after $((SECONDS - START_T0))s (exit $rc); see the messages above." \
      "$(if [ "$STEP" -le 6 ]; then echo "The running site was not changed."; else echo "Check the site: ssh $HOST 'cd $DEPLOY_DIR && $DC ps'"; fi)"
  fi
}
trap on_exit EXIT

# Quotes arguments for display so that a printed command can be pasted into a shell.
shell_quote() {
  local out='' a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      out="$out $a"
    else
      out="$out '${a//\'/\'\\\'\'}'"
    fi
  done
  printf '%s' "${out# }"
}

# Runs a local command, or prints it under --dry-run.
run() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf 'DRY-RUN: %s\n' "$(shell_quote "$@")"
    return 0
  fi
  printf '    $ %s\n' "$(shell_quote "$@")"
  "$@"
}

# Runs one shell command on the host: every remote action goes through here.
remote() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf 'DRY-RUN: %s\n' "$(shell_quote ssh "${SSH_OPTS[@]}" "$HOST" "$1")"
    return 0
  fi
  printf '    %s$ %s\n' "$HOST" "$1" >&2
  # The command is meant to be expanded here and sent whole (values in it are checked or quoted).
  # shellcheck disable=SC2029
  ssh "${SSH_OPTS[@]}" "$HOST" "$1"
}

q() { printf '%q' "$1"; }

# ---------------------------------------------------------------------------------------------
# Step 1: inputs

PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

# Prints the value .env.production gives KEY (the last assignment; quotes and inline comments
# removed as docker compose does); fails when the key is not assigned. The file is read, never
# sourced.
env_value() {
  local key=$1 line val result='' found=1
  local re_assign='^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=(.*)$'
  local re_dq='^"(.*)"$' re_sq="^'(.*)'\$"
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    [[ $line =~ $re_assign ]] || continue
    [ "${BASH_REMATCH[2]}" = "$key" ] || continue
    val=${BASH_REMATCH[3]}
    val=${val#"${val%%[![:space:]]*}"}
    val=${val%"${val##*[![:space:]]}"}
    if [[ $val =~ $re_dq ]] || [[ $val =~ $re_sq ]]; then
      val=${BASH_REMATCH[1]}
    else
      val=${val%%[[:space:]]#*}
    fi
    result=$val
    found=0
  done <"$ENV_FILE"
  printf '%s' "$result"
  return "$found"
}

file_has() { # file, fixed string
  [ -s "$1" ] && grep -qF -- "$2" "$1"
}

validate_env_file() {
  local v value db_re pw
  if [ ! -f "$ENV_FILE" ]; then
    problem "$ENV_FILE is missing: copy .env.example to .env.production and fill it in (APP_ENV=production)"
    return
  fi
  value=$(env_value APP_ENV || true)
  [ "$value" = production ] || problem ".env.production: APP_ENV must be production (it is '${value}')"
  for v in DATABASE_URL BASE_URL SECRET_KEY PAYPAL_MODE SMTP_HOST MAIL_FROM; do
    value=$(env_value "$v" || true)
    [ -n "$value" ] || problem ".env.production: $v is missing or empty"
  done
  value=$(env_value BASE_URL || true)
  if [ -n "$value" ]; then
    case $value in
      https://*/) problem ".env.production: BASE_URL must not end with / (it is $value)" ;;
      https://?*) ;;
      *) problem ".env.production: BASE_URL must start with https:// (it is $value)" ;;
    esac
  fi
  value=$(env_value SECRET_KEY || true)
  if [ -n "$value" ] && [ "${#value}" -lt 64 ]; then
    problem ".env.production: SECRET_KEY is too short (${#value} characters; make one with: openssl rand -base64 64 | tr -d '\\n')"
  fi
  value=$(env_value PAYPAL_MODE || true)
  [ "$value" != simulator ] || problem ".env.production: PAYPAL_MODE is simulator; production needs real PayPal (live)"
  [ -z "$value" ] || [ "$value" = simulator ] || [ "${value%%[[:space:]#]*}" = live ] || problem ".env.production: PAYPAL_MODE is $value; the app accepts only live in production"
  value=$(env_value DATABASE_URL || true)
  db_re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:[0-9]+)?/[^/?]+'
  if [ -n "$value" ]; then
    if ! [[ $value =~ $db_re ]]; then
      problem ".env.production: DATABASE_URL must look like postgres://ticketing:PASSWORD@db:5432/ticketing"
    elif [ "${BASH_REMATCH[5]}" = db ]; then
      pw=${BASH_REMATCH[4]}
      if [ -s "$PASSWORD_FILE" ] && [ "$pw" != "$(head -n 1 "$PASSWORD_FILE")" ]; then
        problem ".env.production: the password in DATABASE_URL differs from secrets/postgres_password (use one without characters that need URL encoding, e.g. openssl rand -hex 32)"
      fi
    else
      info "note: DATABASE_URL points at ${BASH_REMATCH[5]}, not at the compose service db"
    fi
  fi
  value=$(env_value TLS_CLIENT_CA_FILE || true)
  if [ -n "$value" ]; then
    case $value in
      /certs/?*)
        [ -s "$PROJECT_DIR/certs/${value#/certs/}" ] ||
          problem ".env.production: TLS_CLIENT_CA_FILE=$value but certs/${value#/certs/} is missing or empty"
        ;;
      *) problem ".env.production: TLS_CLIENT_CA_FILE must be a file under /certs/ (certs/ here), e.g. /certs/origin-pull-ca.pem" ;;
    esac
  fi
}

validate() {
  local tool cidr
  if [ -z "$HOST" ]; then
    problem "no host: give --host user@host or set DEPLOY_HOST"
  elif ! [[ $HOST =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9._-]+$ ]]; then
    problem "host '$HOST' is not user@host or host"
  fi
  if [ -n "$SSH_KEY" ] && [ ! -r "$SSH_KEY" ]; then
    problem "ssh key $SSH_KEY: no such readable file (--ssh-key / DEPLOY_SSH_KEY)"
  fi
  [[ $DEPLOY_DIR =~ ^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$ ]] ||
    problem "DEPLOY_DIR must be an absolute path of letters, digits, . _ - / (it is '$DEPLOY_DIR')"
  [[ $HEALTH_TIMEOUT =~ ^[0-9]+$ ]] || problem "HEALTH_TIMEOUT must be a number of seconds (it is '$HEALTH_TIMEOUT')"
  [[ $HEALTH_INTERVAL =~ ^[0-9]+$ ]] || problem "HEALTH_INTERVAL must be a number of seconds (it is '$HEALTH_INTERVAL')"
  [[ $PREDEPLOY_BACKUPS_KEEP =~ ^[1-9][0-9]*$ ]] || problem "PREDEPLOY_BACKUPS_KEEP must be a number from 1 (it is '$PREDEPLOY_BACKUPS_KEEP')"
  local re_url='^https?://[][A-Za-z0-9.:_/?=&%-]+$'
  [[ $HEALTH_URL =~ $re_url ]] || problem "HEALTH_URL must be an http(s) URL (it is '$HEALTH_URL')"
  if [ -n "$HEALTH_CLIENT_CERT$HEALTH_CLIENT_KEY" ] && { [ -z "$HEALTH_CLIENT_CERT" ] || [ -z "$HEALTH_CLIENT_KEY" ]; }; then
    problem "HEALTH_CLIENT_CERT and HEALTH_CLIENT_KEY go together"
  fi

  validate_env_file

  [ -f "$COMPOSE_FILE_LOCAL" ] || problem "$COMPOSE_FILE_LOCAL is missing"
  [ -f "$PROJECT_DIR/Dockerfile" ] || problem "$PROJECT_DIR/Dockerfile is missing"
  [ -f "$RESTORE_SCRIPT" ] || problem "$RESTORE_SCRIPT is missing"
  if ! read_cidr_file "$CF_IPS_FILE" >/dev/null 2>"${TMPDIR:-/tmp}/deploy-cidr.$$"; then
    problem "config/cloudflare-ips.txt: $(cat "${TMPDIR:-/tmp}/deploy-cidr.$$")"
  fi
  rm -f "${TMPDIR:-/tmp}/deploy-cidr.$$"
  file_has "$CERT_FILE" "BEGIN CERTIFICATE" ||
    problem "certs/origin.pem is missing or not a PEM certificate (the Cloudflare Origin CA certificate)"
  file_has "$KEY_FILE" "PRIVATE KEY" ||
    problem "certs/origin.key is missing or not a PEM private key (the Origin CA certificate's key)"
  [ -s "$PASSWORD_FILE" ] ||
    problem "secrets/postgres_password is missing or empty (the database password; make one with: openssl rand -hex 32 > secrets/postgres_password)"

  if [ "$SNAPSHOT" -eq 1 ] || [ "$FIREWALL" -eq 1 ]; then
    [ -n "$LIGHTSAIL_INSTANCE" ] || problem "--snapshot and --firewall need LIGHTSAIL_INSTANCE (the Lightsail instance name)"
  fi
  if [ "$FIREWALL" -eq 1 ]; then
    SSH_CIDRS=()
    for cidr in ${SSH_ALLOWED_CIDR//,/ }; do
      if is_cidr "$cidr"; then SSH_CIDRS+=("$cidr"); else problem "SSH_ALLOWED_CIDR: '$cidr' is not a network in CIDR form"; fi
    done
    [ -n "$SSH_ALLOWED_CIDR" ] || problem "--firewall needs SSH_ALLOWED_CIDR (the networks allowed to ssh, e.g. 203.0.113.7/32), or ssh would be closed"
  fi

  if [ -n "${DEPLOY_TAG:-}" ]; then
    TAG=$DEPLOY_TAG
  elif git -C "$PROJECT_DIR" rev-parse --short=12 HEAD >/dev/null 2>&1; then
    TAG=$(git -C "$PROJECT_DIR" rev-parse --short=12 HEAD)
    if [ -n "$(git -C "$PROJECT_DIR" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
      TAG="$TAG-dirty-$(date -u +%Y%m%d%H%M%S)"
      info "warning: uncommitted changes are deployed as $REPO:$TAG"
    fi
  else
    TAG=
    problem "$PROJECT_DIR is not a git checkout: set DEPLOY_TAG"
  fi
  if [ -n "$TAG" ] && ! [[ $TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$ ]]; then
    problem "image tag '$TAG' is not a valid Docker tag"
  fi
  case $TAG in latest | previous) problem "image tag '$TAG' is reserved" ;; esac

  if [ "$DRY_RUN" -eq 0 ]; then
    for tool in docker ssh scp gzip; do
      command -v "$tool" >/dev/null 2>&1 || problem "$tool is not installed here"
    done
    if [ "$SNAPSHOT" -eq 1 ] || [ "$FIREWALL" -eq 1 ]; then
      command -v aws >/dev/null 2>&1 || problem "aws (the AWS CLI) is not installed here; --snapshot and --firewall need it"
    fi
  fi
}

step 1 "check inputs and .env.production"
SSH_CIDRS=()
TAG=
validate
if [ "${#PROBLEMS[@]}" -gt 0 ]; then
  echo "deploy.sh: nothing was done, because:" >&2
  for p in "${PROBLEMS[@]}"; do echo "  - $p" >&2; done
  REPORTED=1
  exit 2
fi

IMAGE=$REPO:$TAG
QDIR=$(q "$DEPLOY_DIR")
SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4)
if [ -n "$SSH_KEY" ]; then SSH_OPTS+=(-i "$SSH_KEY" -o IdentitiesOnly=yes); fi
if [ -n "${DEPLOY_SSH_OPTS:-}" ]; then
  read -r -a extra_ssh_opts <<<"$DEPLOY_SSH_OPTS"
  SSH_OPTS+=("${extra_ssh_opts[@]}")
fi
SCP_OPTS=(-q "${SSH_OPTS[@]}")
AWS_ARGS=()
if [ -n "$AWS_REGION" ]; then AWS_ARGS=(--region "$AWS_REGION"); fi
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
info "deploying $IMAGE to $HOST:$DEPLOY_DIR$([ "$DRY_RUN" -eq 1 ] && echo ' (dry run: commands are printed, not run)')"
step_done "ok"

# ---------------------------------------------------------------------------------------------
# Step 2: build

step 2 "build $IMAGE"
run docker build --platform "$DOCKER_PLATFORM" --target runtime -t "$IMAGE" "$PROJECT_DIR"
step_done

# ---------------------------------------------------------------------------------------------
# Steps 3 and 4: Lightsail

if [ "$SNAPSHOT" -eq 1 ]; then
  step 3 "Lightsail snapshot of $LIGHTSAIL_INSTANCE"
  snapshot_name="$LIGHTSAIL_INSTANCE-before-${TAG//./-}-$STAMP"
  run aws lightsail create-instance-snapshot ${AWS_ARGS[@]+"${AWS_ARGS[@]}"} \
    --instance-name "$LIGHTSAIL_INSTANCE" --instance-snapshot-name "$snapshot_name"
  info "snapshot $snapshot_name requested (it completes in the background; see the Lightsail console)"
  step_done
else
  step_skip 3 "Lightsail snapshot" "no --snapshot"
fi

json_list() {
  local out='' x
  for x in "$@"; do out="$out${out:+,}\"$x\""; done
  printf '[%s]' "$out"
}

if [ "$FIREWALL" -eq 1 ]; then
  step 4 "Lightsail firewall of $LIGHTSAIL_INSTANCE: 443 from Cloudflare, 22 from $SSH_ALLOWED_CIDR"
  cf4=()
  cf6=()
  while IFS= read -r net; do
    if is_ipv4_cidr "$net"; then cf4+=("$net"); else cf6+=("$net"); fi
  done < <(read_cidr_file "$CF_IPS_FILE")
  ssh4=()
  ssh6=()
  for net in "${SSH_CIDRS[@]}"; do
    if is_ipv4_cidr "$net"; then ssh4+=("$net"); else ssh6+=("$net"); fi
  done
  port_infos="[{\"fromPort\":443,\"toPort\":443,\"protocol\":\"tcp\",\"cidrs\":$(json_list ${cf4[@]+"${cf4[@]}"}),\"ipv6Cidrs\":$(json_list ${cf6[@]+"${cf6[@]}"})},"
  port_infos="$port_infos{\"fromPort\":22,\"toPort\":22,\"protocol\":\"tcp\",\"cidrs\":$(json_list ${ssh4[@]+"${ssh4[@]}"}),\"ipv6Cidrs\":$(json_list ${ssh6[@]+"${ssh6[@]}"})}]"
  info "every other port, 80 included, is closed; ssh from elsewhere than $SSH_ALLOWED_CIDR stops working"
  run aws lightsail put-instance-public-ports ${AWS_ARGS[@]+"${AWS_ARGS[@]}"} \
    --instance-name "$LIGHTSAIL_INSTANCE" --port-infos "$port_infos"
  step_done
else
  step_skip 4 "Lightsail firewall" "no --firewall"
fi

# ---------------------------------------------------------------------------------------------
# Step 5: ship the image and the files

step 5 "ship $IMAGE and the files to $HOST:$DEPLOY_DIR"
remote "docker compose version >/dev/null || { echo 'docker compose (v2) is not installed on the host' >&2; exit 1; }; mkdir -p $QDIR || { echo 'cannot create $DEPLOY_DIR: run once on the host: sudo install -d -m 700 -o \$(id -un) $DEPLOY_DIR' >&2; exit 1; }; cd $QDIR && chmod 700 . && mkdir -p certs secrets backups && chmod 755 certs secrets && chmod 700 backups"
if [ "$DRY_RUN" -eq 1 ]; then
  printf 'DRY-RUN: %s | gzip -c | %s\n' "$(shell_quote docker save "$IMAGE")" \
    "$(shell_quote ssh "${SSH_OPTS[@]}" "$HOST" "gunzip -c | docker load")"
else
  info "docker save $IMAGE | gzip | ssh docker load"
  docker save "$IMAGE" | gzip -c | remote "gunzip -c | docker load"
fi
cert_files=("$CERT_FILE" "$KEY_FILE")
for f in "$PROJECT_DIR"/certs/*.pem "$PROJECT_DIR"/certs/*.crt; do
  if [ -f "$f" ] && [ "$f" != "$CERT_FILE" ]; then cert_files+=("$f"); fi
done
run scp "${SCP_OPTS[@]}" "$COMPOSE_FILE_LOCAL" "$ENV_FILE" "$RESTORE_SCRIPT" "$HOST:$DEPLOY_DIR/"
run scp "${SCP_OPTS[@]}" "${cert_files[@]}" "$HOST:$DEPLOY_DIR/certs/"
run scp "${SCP_OPTS[@]}" "$PASSWORD_FILE" "$HOST:$DEPLOY_DIR/secrets/"
remote "cd $QDIR && chmod 600 .env.production && chmod 644 certs/* secrets/* $COMPOSE_NAME && chmod 755 restore"
step_done

# ---------------------------------------------------------------------------------------------
# Step 6: keep the previous image, back up the database

step 6 "keep the running image as previous, back up the database"
PREV=
prev_cmd="cd $QDIR && cid=\$($DC ps -q app 2>/dev/null || true); if [ -n \"\$cid\" ]; then docker tag \"\$(docker inspect --format '{{.Image}}' \"\$cid\")\" $REPO:previous && docker inspect --format '{{.Config.Image}}' \"\$cid\" | tee previous_image; fi"
if [ "$DRY_RUN" -eq 1 ]; then
  remote "$prev_cmd"
  PREV="(the image running now)"
else
  PREV=$(remote "$prev_cmd")
  PREV=${PREV%%$'\n'*}
fi
if [ -n "$PREV" ]; then
  info "previous image: $PREV (tagged $REPO:previous on the host)"
else
  info "no app is running: first deploy, nothing to roll back to"
fi
BACKUP_FILE="backups/pre-deploy-$STAMP-$TAG.dump"
remote "cd $QDIR && if [ -n \"\$($DC ps -q db 2>/dev/null)\" ]; then $DC exec -T db pg_dump -Fc -U ticketing -d ticketing > $BACKUP_FILE.partial && mv $BACKUP_FILE.partial $BACKUP_FILE && ls -l $BACKUP_FILE || { rm -f $BACKUP_FILE.partial; echo 'pg_dump failed' >&2; exit 1; }; ls -1t backups/pre-deploy-*.dump | tail -n +$((PREDEPLOY_BACKUPS_KEEP + 1)) | xargs -r rm -f --; else echo 'no database is running yet: nothing to back up'; fi"
step_done

# ---------------------------------------------------------------------------------------------
# Steps 7 to 10: migrate, start, check, and finish or roll back

HEALTH_CMD="curl -fsk --max-time 5 -o /dev/null"
if [ -n "$HEALTH_CLIENT_CERT" ]; then
  HEALTH_CMD="$HEALTH_CMD --cert $(q "$HEALTH_CLIENT_CERT") --key $(q "$HEALTH_CLIENT_KEY")"
fi
HEALTH_CMD="$HEALTH_CMD $(q "$HEALTH_URL")"

# Polls /healthz on the host until it answers 2xx (0) or HEALTH_TIMEOUT passes (1).
wait_healthy() {
  local t0=$SECONDS tries=0
  if [ "$DRY_RUN" -eq 1 ]; then
    remote "$HEALTH_CMD"
    return 0
  fi
  while :; do
    tries=$((tries + 1))
    if remote "$HEALTH_CMD" >/dev/null 2>&1; then
      info "healthy: $HEALTH_URL answered after $((SECONDS - t0))s ($tries tries)"
      return 0
    fi
    if [ $((SECONDS - t0)) -ge "$HEALTH_TIMEOUT" ]; then
      info "not healthy: $HEALTH_URL did not answer 2xx within ${HEALTH_TIMEOUT}s ($tries tries)"
      return 1
    fi
    info "waiting for $HEALTH_URL ($((SECONDS - t0))s of ${HEALTH_TIMEOUT}s)"
    sleep "$HEALTH_INTERVAL"
  done
}

rollback() { # reason
  local reason=$1 state
  step 10 "ROLL BACK"
  if [ -z "$PREV" ]; then
    loud "DEPLOY FAILED: $reason" \
      "NO ROLLBACK: no previous version was running (first deploy); $IMAGE is left as it is." \
      "Logs: ssh $HOST 'cd $DEPLOY_DIR && $DC logs --tail 200 app'"
    REPORTED=1
    exit 1
  fi
  info "last log lines of $IMAGE:"
  remote "cd $QDIR && $DC logs --no-color --tail 60 app" 2>&1 | sed 's/^/    | /' || true
  if ! remote "cd $QDIR && TICKETING_IMAGE=$REPO:previous $DC up -d app && docker tag $REPO:previous $REPO:latest && cp previous_image current_image"; then
    loud "DEPLOY FAILED: $reason" \
      "ROLLBACK FAILED: could not start the previous image $PREV ($REPO:previous). THE SITE MAY BE DOWN." \
      "By hand: ssh $HOST 'cd $DEPLOY_DIR && TICKETING_IMAGE=$REPO:previous $DC up -d app'"
    REPORTED=1
    exit 1
  fi
  if wait_healthy; then
    state="the previous version is healthy again"
  else
    state="THE PREVIOUS VERSION IS NOT HEALTHY EITHER: THE SITE MAY BE DOWN"
  fi
  step_done "rolled back"
  loud "DEPLOY FAILED: $reason" \
    "ROLLED BACK to $PREV ($REPO:previous): $state." \
    "Migrations of $IMAGE stay applied; if the previous version cannot work with them, restore" \
    "the pre-deploy backup: ssh $HOST '$DEPLOY_DIR/restore $DEPLOY_DIR/$BACKUP_FILE'" \
    "The failed version's last log lines are shown above."
  REPORTED=1
  exit 1
}

step 7 "run database migrations with $IMAGE"
if ! remote "cd $QDIR && TICKETING_IMAGE=$IMAGE $DC run --rm -T app migrate"; then
  fail "the migrations of $IMAGE failed." \
    "The running version was not changed (each migration runs in a transaction)." \
    "Pre-deploy backup on the host: $DEPLOY_DIR/$BACKUP_FILE"
fi
step_done

step 8 "start $IMAGE"
if ! remote "cd $QDIR && TICKETING_IMAGE=$IMAGE $DC up -d"; then
  rollback "docker compose up failed for $IMAGE"
fi
step_done

step 9 "wait for $HEALTH_URL on the host (up to ${HEALTH_TIMEOUT}s)"
if ! wait_healthy; then
  rollback "$IMAGE did not become healthy within ${HEALTH_TIMEOUT}s"
fi
if [ "$DRY_RUN" -eq 1 ]; then step_done; else step_done "healthy"; fi

step 10 "record $IMAGE as current, remove older images"
remote "cd $QDIR && docker tag $IMAGE $REPO:latest && echo $IMAGE > current_image && { docker image ls $REPO --format '{{.Repository}}:{{.Tag}}' | grep -vxF -e $IMAGE -e $REPO:latest -e $REPO:previous -e \"\$(cat previous_image 2>/dev/null || echo none)\" | xargs -r docker rmi >/dev/null 2>&1 || true; }"
step_done
if [ "$DRY_RUN" -eq 1 ]; then
  printf '\ndry run finished in %ss: nothing was run\n' "$((SECONDS - START_T0))"
else
  printf '\ndeployed %s to %s in %ss (previous: %s)\n' "$IMAGE" "$HOST" "$((SECONDS - START_T0))" "${PREV:-none}"
fi
