# shellcheck shell=bash
# cargo-deny for scripts/test (licenses, bans, sources) and scripts/audit (advisories): the
# version pinned below, built from crates.io with `cargo install --locked` into
# ${CARGO_TARGET_DIR:-target}/tools the first time (a few minutes on two cores) and reused
# afterwards. Its checks are configured in deny.toml at the repository's root.

CARGO_DENY_VERSION=0.20.2

# cargo_deny_bin: installs the pinned cargo-deny when it is missing (or another version) and
# prints the path of its binary.
cargo_deny_bin() {
  local root target tools bin
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  target=${CARGO_TARGET_DIR:-$root/target}
  case $target in /*) ;; *) target=$PWD/$target ;; esac
  tools=$target/tools
  bin=$tools/bin/cargo-deny
  if [ "$("$bin" --version 2>/dev/null)" = "cargo-deny $CARGO_DENY_VERSION" ]; then
    echo "$bin"
    return
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not installed, so cargo-deny $CARGO_DENY_VERSION cannot be built; install Rust (https://rustup.rs)" >&2
    return 1
  fi
  echo "Installing cargo-deny $CARGO_DENY_VERSION (crates.io, cargo install --locked) into $tools; once, a few minutes" >&2
  # Its own build directory, not the project's target/: nothing of it is mixed with the
  # project's build, and it is removed once the binary is installed.
  if ! cargo install --locked "cargo-deny@$CARGO_DENY_VERSION" \
    --root "$tools" --target-dir "$tools/build" >&2; then
    cat >&2 <<MSG
Could not install cargo-deny $CARGO_DENY_VERSION from crates.io (cargo install --locked
cargo-deny@$CARGO_DENY_VERSION --root $tools). It needs crates.io and a Rust new enough for it
(rust-version 1.88; this is $(rustc --version 2>/dev/null || echo 'no rustc')).
MSG
    return 1
  fi
  rm -rf "$tools/build"
  echo "$bin"
}
