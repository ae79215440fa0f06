#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for FUZZ_SECONDS (default 60) from a
# copy of its seed corpus in fuzz/corpus/<target>/ (runs never grow the repository).
# Exits non-zero if any target crashes, printing the input that crashed it; crash inputs are
# kept in fuzz/artifacts/<target>/ (ignored by git).
#
#   scripts/fuzz.sh                      all targets, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh uri  one target, longer
#
# Needs a nightly toolchain (sanitizers); without one, the stable toolchain is used with
# RUSTC_BOOTSTRAP=1. Builds go to CARGO_TARGET_DIR if set, else fuzz/target.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$repo/fuzz"
seconds=${FUZZ_SECONDS:-60}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    echo "== no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
    toolchain=()
    export RUSTC_BOOTSTRAP=1
fi

cd "$fuzz"
mapfile -t all < <(cargo "${toolchain[@]}" fuzz list)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

echo "== building ${#all[@]} fuzz targets"
cargo "${toolchain[@]}" fuzz build
# The targets are run directly (cargo fuzz run would rebuild everything to print a crash).
host=$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')
bin="${CARGO_TARGET_DIR:-$fuzz/target}/$host/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$fuzz/artifacts/$t"
    [ -d "$fuzz/corpus/$t" ] && cp -r "$fuzz/corpus/$t/." "$work/$t/"
    extra=()
    [ -f "$fuzz/dict/$t.dict" ] && extra+=("-dict=$fuzz/dict/$t.dict")
    echo "== $t: ${seconds}s"
    start=$(date +%s)
    set +e
    "$bin/$t" "$work/$t" -max_total_time="$seconds" -artifact_prefix="$fuzz/artifacts/$t/" \
        -timeout=10 -print_final_stats=1 "${extra[@]}" >"$work/$t.log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || true)
    echo "   $t: exit $rc, ${runs:-?} executions in $(($(date +%s) - start))s"
    if [ $rc -ne 0 ]; then
        tail -n 40 "$work/$t.log"
        crash=$(grep -o "Test unit written to .*" "$work/$t.log" | sed 's/Test unit written to //' || true)
        echo "!! $t crashed; input: ${crash:-see the log above}"
        echo "   reproduce: (cd fuzz && cargo ${toolchain[*]} fuzz run $t ${crash:-<input>})"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzzing failed: ${failed[*]}"
    exit 1
fi
echo "== fuzzing: ${#targets[@]} targets, no crash"
