#!/usr/bin/env bats
# config/cloudflare-ips.txt, the CIDR checks, and scripts/refresh-cloudflare-ips against a stub
# curl that serves local files (no network).

load helpers

setup() {
  common_setup
  # shellcheck source=scripts/lib/cidr.sh
  source "$REPO_ROOT/scripts/lib/cidr.sh"
  export STUB_CURL_DIR=$BATS_TEST_TMPDIR/cloudflare
  mkdir -p "$STUB_CURL_DIR"
  printf '173.245.48.0/20\n103.21.244.0/22\n' >"$STUB_CURL_DIR/ips-v4"
  printf '2400:cb00::/32\n2606:4700::/32\n' >"$STUB_CURL_DIR/ips-v6"
  OUT=$BATS_TEST_TMPDIR/cloudflare-ips.txt
  printf '# old\n192.0.2.0/24\n' >"$OUT"
}

@test "the committed list has Cloudflare's IPv4 and IPv6 ranges, all valid" {
  run read_cidr_file "$REPO_ROOT/config/cloudflare-ips.txt"
  assert_status 0
  [ "$(echo "$output" | wc -l)" -eq 22 ]
  [[ $output == *"173.245.48.0/20"* ]]
  [[ $output == *"131.0.72.0/22"* ]]
  [[ $output == *"2a06:98c0::/29"* ]]
  grep -q '^# .*https://www.cloudflare.com/ips-v4' "$REPO_ROOT/config/cloudflare-ips.txt"
}

@test "the CIDR checks accept networks and reject the rest" {
  for good in 0.0.0.0/0 10.1.2.3/32 104.16.0.0/13 ::/0 ::1/128 2400:cb00::/32 1:2:3:4:5:6:7:8/64; do
    is_cidr "$good" || {
      echo "rejected $good" >&2
      return 1
    }
  done
  for bad in 256.0.0.0/8 1.2.3.4/33 01.2.3.4/8 1.2.3.4 1.2.3/24 2400:cb00::/129 1::2::3/64 \
    12345::/16 1:2:3:4:5:6:7:8:9/64 :1::/64 'x/8' ''; do
    if is_cidr "$bad"; then
      echo "accepted $bad" >&2
      return 1
    fi
  done
}

@test "refresh-cloudflare-ips rewrites the file from valid downloads" {
  run "$REPO_ROOT/scripts/refresh-cloudflare-ips" "$OUT"
  assert_status 0
  assert_output_has "rewritten (2 IPv4 and 2 IPv6 networks)"
  run read_cidr_file "$OUT"
  [ "$output" = "$(printf '173.245.48.0/20\n103.21.244.0/22\n2400:cb00::/32\n2606:4700::/32')" ]
  grep -q '^# Downloaded on ' "$OUT"
  call_line '^curl .*https://www.cloudflare.com/ips-v4$' >/dev/null
  call_line '^curl .*https://www.cloudflare.com/ips-v6$' >/dev/null
}

@test "refresh-cloudflare-ips leaves the file alone when a line is not a network" {
  printf '2400:cb00::/32\n<html>oops</html>\n' >"$STUB_CURL_DIR/ips-v6"
  run "$REPO_ROOT/scripts/refresh-cloudflare-ips" "$OUT"
  [ "$status" -ne 0 ]
  assert_output_has "unchanged"
  [ "$(cat "$OUT")" = "$(printf '# old\n192.0.2.0/24')" ]
}

@test "refresh-cloudflare-ips leaves the file alone when a download fails" {
  rm "$STUB_CURL_DIR/ips-v6"
  run "$REPO_ROOT/scripts/refresh-cloudflare-ips" "$OUT"
  [ "$status" -ne 0 ]
  assert_output_has "could not download"
  [ "$(cat "$OUT")" = "$(printf '# old\n192.0.2.0/24')" ]
}

@test "refresh-cloudflare-ips refuses IPv6 ranges in the IPv4 list" {
  printf '173.245.48.0/20\n2400:cb00::/32\n' >"$STUB_CURL_DIR/ips-v4"
  run "$REPO_ROOT/scripts/refresh-cloudflare-ips" "$OUT"
  [ "$status" -ne 0 ]
  assert_output_has "not IPv4"
  [ "$(cat "$OUT")" = "$(printf '# old\n192.0.2.0/24')" ]
}

@test "refresh-cloudflare-ips refuses an empty download" {
  : >"$STUB_CURL_DIR/ips-v4"
  run "$REPO_ROOT/scripts/refresh-cloudflare-ips" "$OUT"
  [ "$status" -ne 0 ]
  assert_output_has "lists no network"
  [ "$(cat "$OUT")" = "$(printf '# old\n192.0.2.0/24')" ]
}
