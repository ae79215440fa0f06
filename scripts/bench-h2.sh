#!/usr/bin/env bash
# HTTP/2 over TLS, slabfront vs nginx (http2 on), same P-256 certificate and TLS 1.3 suite
# order, each server pinned to core 0 with one worker, h2load pinned to core 1, same run:
# 1 KiB and 1.3 MB files, 64 connections x 10 streams (1.3 MB: 16 x 1). Prints req/s and
# requests (and MB) per server CPU-second, from the server's utime+stime in /proc.
# Usage: scripts/bench-h2.sh [SECONDS] (needs a release build: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
BIN="${SLABFRONT_BIN:-target/release/slabfront}"
command -v h2load >/dev/null || { apt-get install -y -q nghttp2-client >/dev/null; }
scripts/bench-deps.sh >/dev/null
W="$(mktemp -d)"
trap 'kill $(cat "$W"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/site" "$W/nginx"
head -c 1024 /dev/urandom > "$W/site/1k.bin"
head -c 1323539 /dev/urandom > "$W/site/page.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k.pem" \
  -out "$W/c.pem" -days 2 -subj /CN=localhost 2>/dev/null
SUITES="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
cat > "$W/sf.toml" <<CFG
[server]
listen = ["127.0.0.1:19080"]
listen_tls = ["127.0.0.1:19443"]
workers = 1
[tls]
minimum_protocol_version = "TLSv1.3"
[[tls.certificates]]
cert = "$W/c.pem"
key = "$W/k.pem"
[[origins]]
id = "files"
path = "$W/site"
[default_cache_behavior]
target_origin = "files"
CFG
cat > "$W/nginx/nginx.conf" <<CFG
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    types { application/octet-stream bin; }
    ssl_protocols TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites $SUITES;
    ssl_session_cache shared:SSL:10m;
    server {
        listen 127.0.0.1:19444 ssl http2 reuseport backlog=4096;
        ssl_certificate $W/c.pem;
        ssl_certificate_key $W/k.pem;
        root $W/site;
    }
}
CFG
# nginx's worker runs as an unprivileged user: it must be able to read the files.
chmod -R a+rX "$W"
taskset -c 0 "$BIN" --config "$W/sf.toml" > "$W/sf.out" 2> "$W/sf.err" & echo $! > "$W/sf.pid"
taskset -c 0 nginx -p "$W/nginx" -c "$W/nginx/nginx.conf"
sleep 1
cpu() { # utime+stime of a process and its children, in clock ticks
  local t=0
  for p in "$@" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat")))
  done
  echo $t
}
HZ=$(getconf CLK_TCK)
run() { # name pid port path conns streams
  local name=$1 pid=$2 port=$3 path=$4 c=$5 m=$6
  taskset -c 1 h2load -D 2 -c "$c" -m "$m" "https://127.0.0.1:$port$path" >/dev/null 2>&1 # warm-up
  local t0; t0=$(cpu "$pid")
  local out; out=$(taskset -c 1 h2load -D "$SECS" -c "$c" -m "$m" "https://127.0.0.1:$port$path" 2>&1)
  local t1; t1=$(cpu "$pid")
  local reqs; reqs=$(echo "$out" | awk '/^requests:/{print $8}')
  local rps; rps=$(echo "$out" | awk '/^finished in/{print $4}')
  local cpus; cpus=$(echo "scale=3; ($t1-$t0)/$HZ" | bc)
  local per; per=$(echo "scale=0; $reqs/$cpus" | bc)
  local size; size=$(stat -c %s "$W/site${path}")
  local mb; mb=$(echo "scale=1; $reqs*$size/$cpus/1000000" | bc)
  local mean; mean=$(echo "$out" | awk '/time for request:/{print $5" (sd "$6")"}')
  local codes; codes=$(echo "$out" | awk '/^status codes:/{print $3" 2xx, "$5" 3xx, "$7" 4xx, "$9" 5xx"}')
  local fails; fails=$(echo "$out" | awk '/^requests:/{print $10" failed, "$12" errored"}')
  echo "| $path, ${c}x${m} | $name | $rps | $cpus | $per | $mb | $mean | $codes; $fails |"
}
NGINX_PID=$(cat "$W/nginx.pid")
echo "| test | server | req/s | server CPU-s | req per CPU-s | MB per CPU-s | request time mean | responses |"
echo "|---|---|---|---|---|---|---|---|"
for round in 1 2; do
  run slabfront "$(cat "$W/sf.pid")" 19443 /1k.bin 64 10
  run nginx "$NGINX_PID" 19444 /1k.bin 64 10
  run slabfront "$(cat "$W/sf.pid")" 19443 /page.bin 16 1
  run nginx "$NGINX_PID" 19444 /page.bin 16 1
done
kill "$(cat "$W/nginx.pid")"
