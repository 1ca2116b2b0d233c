#!/usr/bin/env bash
# The failover demo, from a fresh machine: install what the build needs, build release
# binaries, then two hosts in network namespaces (the LinShim6 testbed: 3 prefixes each,
# a router that can break any one-way path), an HBA set for each made by cga-tool, a
# shim6d process on each, a TCP stream between their ULIDs, the current path broken
# under it, a timeline of what happened, and everything cleaned up.
#
#   ./demo.sh                 timeline and summary
#   ./demo.sh --json          the summary as one JSON object on stdout (progress on stderr)
#   ./demo.sh --unidirectional  break only A -> B on the current pair
#   ./demo.sh --send-timeout S  REAP Send Timeout (default 3 s here, short for the demo;
#                               the RFC 5534 default is 15 s)
#
# Needs root (network namespaces, TUN devices, raw sockets). The code is
# tests/src/daemons.rs, shared with the netns tests (tests/tests/netns_failover.rs).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
. scripts/common.sh

json=0
for a in "$@"; do [ "$a" = "--json" ] && json=1; done
# With --json, stdout carries only the JSON object.
if [ $json -eq 1 ]; then exec 3>&1 1>&2; else exec 3>&1; fi

install_apt_packages
echo "== building release binaries (cga-tool, shim6d, the demo driver)"
cargo build --release --locked -p cga-tool -p shim6d
cargo build --release --locked -p shim6-tests --example failover_demo
bin=${CARGO_TARGET_DIR:-target}/release

if [ "$(id -u)" -ne 0 ]; then
    echo "the demo creates network namespaces: run it as root (sudo ./demo.sh)" >&2
    exit 2
fi

echo
echo "== failover demo: a TCP stream between two ULIDs survives the loss of its path"
SHIM6D_BIN=$bin/shim6d CGA_TOOL_BIN=$bin/cga-tool "$bin/examples/failover_demo" "$@" >&3
