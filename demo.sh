#!/usr/bin/env bash
# The main job, from a fresh machine: install what the build needs, build release
# binaries, and show what they do.
#
# Today that is the CGA/HBA tooling and the daemon's interface; the daemon issue turns this
# script into the failover demo (two hosts in network namespaces, a path cut under a live
# TCP stream).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
. scripts/common.sh

install_apt_packages
echo "== building release binaries (cga-tool, shim6d)"
cargo build --release --locked -p cga-tool -p shim6d
bin=target/release

echo
echo "== cga-tool --help"
"$bin/cga-tool" --help
echo
echo "== shim6d --help"
"$bin/shim6d" --help

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo
echo "== an HBA set for a host with two providers (Sec 1), then each address verified"
"$bin/cga-tool" generate --sec 1 --hba --prefix 2001:db8:1::/64 --prefix 2001:db8:2::/64 \
    --format json --out "$work/hba.json"
cat "$work/hba.json"
echo
python3 - "$work/hba.json" > "$work/pairs" <<'PY'
import json, sys
for a in json.load(open(sys.argv[1]))["addresses"]:
    print(a["address"], a["params"])
PY
while read -r addr params; do

    "$bin/cga-tool" verify --address "$addr" --params "$params"
done < "$work/pairs"
