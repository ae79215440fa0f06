#!/usr/bin/env bash
# A fleet on one machine (docs/fleet.md): etcd, one counting origin, two shields
# (127.0.0.11-12), three edges (127.0.0.21-23) and HAProxy in front (127.0.0.1:8088), all
# started and stopped by PID by scripts/fleet_check.py, which measures and asserts:
#   - origin fetches per distinct object under a Zipf load = 1
#   - invalidation fan-out (POST on one edge -> Completed) p50/p99 over 100
#   - an edge killed by SIGKILL mid-load: 0 failed requests after HAProxy's check interval
#   - a shield killed: its keys move to the other shield, fetched from the origin once more
#   - etcd stopped: nodes keep serving, invalidations answer 503
#
#   scripts/fleet-test.sh                       # build (debug), install what is missing, run
#   FLEET_BIN=/path/to/slabfront scripts/fleet-test.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

missing=()
command -v etcd >/dev/null || missing+=(etcd-server etcd-client)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [[ -n "${FLEET_BIN:-}" ]]; then
  bin="$FLEET_BIN"
else
  cargo build -q -p slabfront --manifest-path "$root/Cargo.toml"
  target_dir="$(cargo metadata -q --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  bin="$target_dir/debug/slabfront"
fi
[[ -x "$bin" ]] || { echo "fleet-test.sh: no slabfront binary at $bin" >&2; exit 1; }
exec python3 "$root/scripts/fleet_check.py" "$bin" "$root/packaging/haproxy.cfg"
