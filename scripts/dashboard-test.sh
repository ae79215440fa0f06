#!/usr/bin/env bash
# The admin dashboard in a real browser: headless Chromium (Debian's chromium and
# chromium-driver) driven through selenium (PyPI, in a venv), against a slabfront built here.
# Logs in through the page, drives load, checks that the page's numbers move and then match
# /metrics (scripts/dashboard_check.py).
#
#   scripts/dashboard-test.sh                          # build, install what is missing, check
#   DASH_SCREENSHOT=docs/dashboard.png scripts/dashboard-test.sh   # also save a screenshot
#   DASH_BIN=/path/to/slabfront scripts/dashboard-test.sh          # that binary instead
#
# Everything listens on 127.0.0.1; slabfront is stopped by its PID.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DASH_VENV:-/tmp/slabfront-selenium}"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver >/dev/null
fi
if ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'selenium>=4.10,<5'
fi

if [[ -n "${DASH_BIN:-}" ]]; then
  bin="$DASH_BIN"
else
  cargo build -q -p slabfront --manifest-path "$root/Cargo.toml"
  target_dir="$(cargo metadata -q --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  bin="$target_dir/debug/slabfront"
fi
[[ -x "$bin" ]] || { echo "dashboard-test.sh: no slabfront binary at $bin" >&2; exit 1; }

shot=()
[[ -n "${DASH_SCREENSHOT:-}" ]] && shot=(--screenshot "$DASH_SCREENSHOT")
# selenium must not look for a driver on the network: chromedriver is given.
export SE_OFFLINE=true
exec "$venv/bin/python" "$root/scripts/dashboard_check.py" "$bin" "${shot[@]}"
