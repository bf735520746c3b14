# shellcheck shell=bash
# CIDR checks shared by deploy.sh and scripts/refresh-cloudflare-ips. Plain bash 3.2 (macOS'
# /bin/bash), since deploy.sh runs on the operator's laptop.

# True when $1 is an IPv4 network such as 173.245.48.0/20 (octets 0-255 without leading zeros,
# prefix 0-32).
is_ipv4_cidr() {
  local o='(0|[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5])'
  [[ $1 =~ ^$o\.$o\.$o\.$o/(0|[1-9]|[12][0-9]|3[0-2])$ ]]
}

# Prints how many 16-bit groups a colon-separated run such as "2400:cb00" has (0 for ""), or
# fails when it is not one.
_ipv6_groups() {
  local s=$1 colons
  if [ -z "$s" ]; then
    echo 0
    return 0
  fi
  [[ $s =~ ^[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*$ ]] || return 1
  colons=${s//[^:]/}
  echo $((${#colons} + 1))
}

# True when $1 is an IPv6 network such as 2400:cb00::/32 (at most one "::", prefix 0-128;
# embedded IPv4 forms are not accepted).
is_ipv6_cidr() {
  local addr left right nl nr
  [[ $1 =~ ^([0-9A-Fa-f:]+)/(0|[1-9][0-9]?|1[01][0-9]|12[0-8])$ ]] || return 1
  addr=${BASH_REMATCH[1]}
  case $addr in
    *::*)
      left=${addr%%::*}
      right=${addr#*::}
      case $right in *::* | :*) return 1 ;; esac
      nl=$(_ipv6_groups "$left") || return 1
      nr=$(_ipv6_groups "$right") || return 1
      [ $((nl + nr)) -le 7 ]
      ;;
    *)
      nl=$(_ipv6_groups "$addr") || return 1
      [ "$nl" -eq 8 ]
      ;;
  esac
}

is_cidr() {
  is_ipv4_cidr "$1" || is_ipv6_cidr "$1"
}

# Prints the networks listed in file $1 (one per line; blank lines and # comments skipped,
# surrounding spaces trimmed). Fails naming the first line that is not a CIDR network, or when
# the file lists none.
read_cidr_file() {
  local file=$1 line n=0 count=0
  if [ ! -r "$file" ]; then
    echo "$file: cannot be read" >&2
    return 1
  fi
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [ -n "$line" ] || continue
    if ! is_cidr "$line"; then
      echo "$file:$n: not an IPv4 or IPv6 network in CIDR form: $line" >&2
      return 1
    fi
    printf '%s\n' "$line"
    count=$((count + 1))
  done <"$file"
  if [ "$count" -eq 0 ]; then
    echo "$file: lists no network" >&2
    return 1
  fi
}
