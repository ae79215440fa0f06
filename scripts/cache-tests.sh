#!/usr/bin/env bash
# Runs the HTTP caching test suite (http-tests/cache-tests, as on cache-tests.fyi; the copy
# vendored in tests/cache-tests/suite) through slabfront and fails if fewer required tests
# pass than tests/cache-tests/required-floor says.
#
#   scripts/cache-tests.sh                 # build, run, compare with the floor
#   CT_FAILURES=1 scripts/cache-tests.sh   # also list every non-passing test
#   CT_BIN=/path/to/slabfront scripts/cache-tests.sh   # run that binary instead of building
#
# The binary is built into cargo's target directory (CARGO_TARGET_DIR is honoured).
# Needs node >= 20.18.1 and npm (the suite's client uses undici 7). Everything listens on
# 127.0.0.1; slabfront is stopped by its PID.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${CT_PROXY_PORT:-28010}"
oport="${CT_ORIGIN_PORT:-28000}"
floor="$(tr -dc 0-9 < "$root/tests/cache-tests/required-floor")"

if [[ -n "${CT_BIN:-}" ]]; then
  bin="$CT_BIN"
else
  cargo build -q -p slabfront --manifest-path "$root/Cargo.toml"
  target_dir="$(cargo metadata -q --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
  bin="$target_dir/debug/slabfront"
fi
[[ -x "$bin" ]] || { echo "cache-tests.sh: no slabfront binary at $bin" >&2; exit 1; }

work="$(mktemp -d /tmp/slabfront-cache-tests.XXXXXX)"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work/slab"
}
trap cleanup EXIT

sed -e "s|@PORT@|$port|" -e "s|@ORIGIN_PORT@|$oport|" -e "s|@CACHE@|$work/slab|" \
  "$root/tests/cache-tests/slabfront.toml" > "$work/slabfront.toml"
"$bin" --config "$work/slabfront.toml" > "$work/slabfront.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  grep -q "listening on" "$work/slabfront.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/slabfront.log" >&2; exit 1; }
  sleep 0.1
done

dir="$("$root/tests/cache-tests/harness/install.sh" "${CT_HOME:-$work/harness}")"
"$dir/run.sh" "http://127.0.0.1:$port" "$oport" slabfront | tee "$work/summary.txt"

total="$(grep '^TOTAL' "$work/summary.txt")"
required="$(sed -E 's|.*req ([0-9]+)/.*|\1|' <<<"$total")"
optimal="$(sed -E 's|.*opt ([0-9]+)/.*|\1|' <<<"$total")"
echo "slabfront: $required required and $optimal optimal tests passed (floor: $floor required)"
if (( required < floor )); then
  echo "FAIL: required-pass count dropped below the recorded floor" >&2
  exit 1
fi
