#!/usr/bin/env bash
# Installs what the test suite needs and runs all of it, tier by tier:
#   fmt, clippy, unit + simulator + integration tests (nextest), doc tests, rustdoc,
#   and a short fuzz smoke pass when a nightly toolchain is present.
# Exit status is non-zero if any tier fails. Every tier prints one summary line; the last
# line counts the tiers.
#
# Environment:
#   SHIM6_SKIP_FUZZ=1     skip the fuzz smoke pass
#   SHIM6_FUZZ_SECONDS=N  seconds per fuzz target (default 15)
set -uo pipefail
cd "$(dirname "$0")"
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
. scripts/common.sh

install_apt_packages
# A full disk fails builds with confusing errors: say up front how much room there is.
df -h . | tail -n 1 | awk '{print "disk: " $4 " free of " $2 " on " $6}'
# The tools the suite needs are installed now: a test that cannot find one fails
# instead of skipping.
export SHIM6_REQUIRE_TOOLS=1
# A one-shot build gains nothing from incremental compilation, which doubles the target
# directory; CI disks are not always large.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

passed=0
failed=0
failed_names=()
tier() {
    local name=$1
    shift
    echo
    echo "=== tier: $name"
    local start=$SECONDS
    if "$@"; then
        echo "=== tier $name: ok ($((SECONDS - start)) s)"
        passed=$((passed + 1))
    else
        echo "=== tier $name: FAILED ($((SECONDS - start)) s)"
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
}

run_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --no-fail-fast
    else
        cargo test --workspace --no-fail-fast
    fi
}

tier fmt cargo fmt --all -- --check
tier clippy cargo clippy --workspace --all-targets --locked -- -D warnings
tier tests run_tests
tier doctests cargo test --workspace --doc --locked
tier rustdoc env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
if [ "${SHIM6_SKIP_FUZZ:-0}" = 1 ]; then
    echo "=== tier fuzz-smoke: SKIPPED (SHIM6_SKIP_FUZZ=1)"
elif fuzz_toolchain_ready; then
    tier fuzz-smoke fuzz_smoke "${SHIM6_FUZZ_SECONDS:-15}"
else
    echo "=== tier fuzz-smoke: SKIPPED (no nightly toolchain or cargo-fuzz could not be installed)"
fi

echo
if [ "$failed" -gt 0 ]; then
    echo "failed tiers: ${failed_names[*]}"
fi
echo "tiers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
