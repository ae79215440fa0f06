#!/usr/bin/env bash
# Installs what the benchmarks need (nginx, wrk, Varnish, Traffic Server, a C compiler) from
# Debian's packages when missing.
set -euo pipefail
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v varnishd >/dev/null || need+=(varnish)
command -v traffic_server >/dev/null || need+=(trafficserver)
command -v cc >/dev/null || need+=(gcc)
command -v taskset >/dev/null || need+=(util-linux)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
