#!/usr/bin/env bash
# What CDN users measure, with wrk: the same page straight from the origin, through
# slabfront with a cold cache (unique URLs), and through slabfront warm (one URL).
#   bench/wrk/compare.sh http://origin:8000/simple/ http://edge:8080/simple/ [connections] [seconds]
set -euo pipefail
origin="$1"; edge="$2"; conns="${3:-64}"; secs="${4:-20}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v wrk >/dev/null || { echo "needs wrk (Debian: apt-get install -y wrk)" >&2; exit 1; }
run() { wrk -t2 "-c$conns" "-d${secs}s" --latency "$@" | tail -1; }
echo "phase,requests,req_per_s,mb_per_s,p50_ms,p90_ms,p99_ms,p999_ms,errors"
echo "origin direct,$(run -s "$here/report.lua" "$origin")"
echo "edge cold,$(run -s "$here/cold.lua" "$edge")"
curl -s -o /dev/null "$edge"   # fill the cache
echo "edge warm,$(run -s "$here/report.lua" "$edge")"
