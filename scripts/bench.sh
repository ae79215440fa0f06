#!/usr/bin/env bash
# The static-file benchmark: slabfront vs nginx, each pinned to core 0, load on core 1.
# Usage: scripts/bench.sh [--runs N] [--duration SECS] [--idle-connections N]
#        scripts/bench.sh --proxy [--runs N] [--duration SECS]   (vs nginx proxy_cache and Varnish)
#        scripts/bench.sh --tls [--runs N] [--duration SECS]     (HTTPS, vs nginx)
#        scripts/bench.sh --compare [--runs N] [--duration SECS] (everything, every peer, one session:
#            slabfront, nginx sendfile on/off and proxy_cache, Varnish, Traffic Server, two C floors)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bench-deps.sh
cargo build --release -q -p slabfront -p slabfront-bench
exec target/release/slabfront-bench "$@"
