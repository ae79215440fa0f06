#!/usr/bin/env bash
# Security advisories, licences, bans and crate sources with cargo-deny (deny.toml), offline:
# the RustSec database is the snapshot in shared/advisory-db beside the repository
# (ADVISORY_DB overrides it), copied to a temporary git repository (cargo-deny opens the
# database as one) and never fetched.
#
#   scripts/audit.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
snapshot=${ADVISORY_DB:-$(dirname "$repo")/shared/advisory-db}
# The version deny.toml was written for (it builds with Rust 1.95).
deny_version=0.20.2

if ! command -v cargo-deny >/dev/null 2>&1; then
    echo "== installing cargo-deny $deny_version"
    cargo install --locked "cargo-deny@$deny_version"
fi
if [ ! -d "$snapshot/crates" ]; then
    echo "no advisory database at $snapshot (expected a RustSec advisory-db snapshot)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# deny.toml reads the databases from $ADVISORY_DB_ROOT/<name cargo-deny gives the URL>.
export ADVISORY_DB_ROOT="$work/dbs"
# (the directory cargo-deny derives from the RustSec URL in deny.toml's db-urls)
db="$ADVISORY_DB_ROOT/advisory-db-3157b0e258782691"
mkdir -p "$db"
cp -r "$snapshot/." "$db/"
chmod -R u+w "$db"
# Dated as the snapshot is (its SNAPSHOT file), so that deny.toml's staleness limit applies.
date=$(grep -o '([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\})' "$db/SNAPSHOT" 2>/dev/null | tr -d '()' | head -n 1 || true)
(
    cd "$db"
    git init -q -b main
    git add -A
    GIT_AUTHOR_DATE="${date:+${date}T00:00:00Z}" GIT_COMMITTER_DATE="${date:+${date}T00:00:00Z}" \
        git -c user.name=audit -c user.email=audit@localhost commit -q -m "advisory-db snapshot"
)

cd "$repo"
# The crate graph: resolved here (crates.io is reachable), so that cargo-deny itself runs
# fully offline.
cargo metadata --format-version 1 >"$work/metadata.json"
cargo deny --version
cargo deny ${AUDIT_LOG_LEVEL:+-L "$AUDIT_LOG_LEVEL"} --offline --metadata-path "$work/metadata.json" check advisories licenses bans sources
