# Shared by test.sh and demo.sh: installing what the project needs on a fresh machine.
# Sourced, not executed.

# Debian packages the build and the tests need.
#  - libssl-dev, pkg-config: the `openssl` crate (RSA for CGA signatures)
#  - tshark: the independent decoder in tests/ (tests/tests/tshark.rs)
#  - openssl, python3: independent checks of cga-tool (cga-tool/tests/independent.rs)
#  - nftables, iproute2, iperf3: network-namespace failure-injection tests
APT_PACKAGES=(libssl-dev pkg-config openssl python3 tshark nftables iproute2 iperf3)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2
        return 1
    fi
}

install_apt_packages() {
    local missing=()
    local p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "apt packages: all present (${APT_PACKAGES[*]})"
        return 0
    fi
    echo "apt packages: installing ${missing[*]}"
    # tshark asks whether non-root users may capture; answer no without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The nightly toolchain and cargo-fuzz for the fuzz smoke pass. Returns non-zero (and the
# caller says SKIPPED) when they cannot be had.
fuzz_toolchain_ready() {
    rustup toolchain list 2>/dev/null | grep -q '^nightly' || return 1
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "installing cargo-fuzz (once per machine)"
        cargo install cargo-fuzz --locked --quiet >/dev/null 2>&1 || return 1
    fi
    cargo fuzz --version >/dev/null 2>&1
}

# Runs every fuzz target for $1 seconds, starting from the seed corpus in fuzz/corpus/.
# New inputs go to a scratch directory, so the checked-in corpus is never modified.
fuzz_smoke() {
    local seconds=$1 t scratch rc=0
    (cd fuzz && cargo +nightly fuzz build -O >/dev/null 2>&1) || {
        echo "fuzz build failed"
        (cd fuzz && cargo +nightly fuzz build -O 2>&1 | tail -30)
        return 1
    }
    scratch=$(mktemp -d)
    for t in $(cd fuzz && cargo +nightly fuzz list); do
        mkdir -p "$scratch/$t"
        if (cd fuzz && cargo +nightly fuzz run -O "$t" "$scratch/$t" "corpus/$t" -- \
            -max_total_time="$seconds" -print_final_stats=1 >"$scratch/$t.log" 2>&1); then
            echo "fuzz $t: clean ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$t.log" | grep -o '[0-9]*$') runs in ${seconds}s)"
        else
            echo "fuzz $t: FAILED"
            tail -40 "$scratch/$t.log"
            rc=1
        fi
    done
    rm -rf "$scratch"
    return $rc
}
