#!/usr/bin/env bash
# Compression at the edge, slabfront vs nginx, over HTTP/2 and TLS (same P-256 certificate,
# same TLS 1.3 suite order), each server pinned to core 0 with one worker, h2load pinned to
# core 1, same run. The object is the 1.3 MB PyPI-like /simple/ page (`compress-levels
# --page`), asked with `Accept-Encoding: gzip` and then `br`:
#   slabfront  a hit, sent from the compressed variant stored in the slab (compress = true;
#              its origin is a plain nginx port, asked once before the runs);
#   nginx      `gzip on` (compresses every response, at its default level 1, and the same at
#              slabfront's level 9), `gzip_static on` (a .gz made beforehand with gzip -9),
#              and the same two with Debian's Brotli modules (brotli on, brotli_static) when
#              they are installed.
# Prints req/s, requests per server CPU-second (utime+stime from /proc) and bytes on the wire
# per response (h2load's traffic total / requests).
# Usage: scripts/bench-compress.sh [SECONDS] (needs release builds: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
BIN="${SLABFRONT_BIN:-target/release/slabfront}"
PAGE_BIN="${PAGE_BIN:-target/release/compress-levels}"
command -v h2load >/dev/null || { apt-get install -y -q nghttp2-client >/dev/null; }
scripts/bench-deps.sh >/dev/null
if [ ! -e /usr/lib/nginx/modules/ngx_http_brotli_filter_module.so ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q libnginx-mod-http-brotli-filter \
    libnginx-mod-http-brotli-static >/dev/null 2>&1 || true
fi
W="$(mktemp -d)"
trap 'kill $(cat "$W"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
trap 'exit 1' INT TERM
mkdir -p "$W/site" "$W/nginx" "$W/slab"
"$PAGE_BIN" --page "$W/site/simple.html"
gzip -9 -k "$W/site/simple.html"
BROTLI=""
if [ -e /usr/lib/nginx/modules/ngx_http_brotli_filter_module.so ]; then
  BROTLI=1
  # brotli_static wants a .br beside the file: made here with the crate slabfront uses, at
  # the same level (9).
  "$PAGE_BIN" --br 9 "$W/site/simple.html" "$W/site/simple.html.br"
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k.pem" \
  -out "$W/c.pem" -days 2 -subj /CN=localhost 2>/dev/null
SUITES="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
cat > "$W/sf.toml" <<CFG
[server]
listen = ["127.0.0.1:19180"]
listen_tls = ["127.0.0.1:19543"]
workers = 1
[tls]
minimum_protocol_version = "TLSv1.3"
[[tls.certificates]]
cert = "$W/c.pem"
key = "$W/k.pem"
[[origins]]
id = "nginx"
domain_name = "127.0.0.1"
http_port = 19190
protocol = "http-only"
[default_cache_behavior]
target_origin = "nginx"
compress = true
default_ttl = 86400
[cache]
path = "$W/slab/slab"
size = "256MiB"
CFG
LOAD=""
BR_SERVERS=""
if [ -n "$BROTLI" ]; then
  LOAD="load_module /usr/lib/nginx/modules/ngx_http_brotli_filter_module.so;
load_module /usr/lib/nginx/modules/ngx_http_brotli_static_module.so;"
  BR_SERVERS="
    server { listen 127.0.0.1:19548 ssl http2; brotli on; brotli_comp_level 9; root $W/site; }
    server { listen 127.0.0.1:19549 ssl http2; brotli_static on; root $W/site; }"
fi
cat > "$W/nginx/nginx.conf" <<CFG
$LOAD
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
    types { text/html html; }
    ssl_protocols TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites $SUITES;
    ssl_session_cache shared:SSL:10m;
    ssl_certificate $W/c.pem;
    ssl_certificate_key $W/k.pem;
    # slabfront's origin (plain, identity).
    server { listen 127.0.0.1:19190; root $W/site; }
    server { listen 127.0.0.1:19544 ssl http2; gzip on; root $W/site; }
    server { listen 127.0.0.1:19545 ssl http2; gzip on; gzip_comp_level 9; root $W/site; }
    server { listen 127.0.0.1:19546 ssl http2; gzip_static on; root $W/site; }$BR_SERVERS
}
CFG
chmod -R a+rX "$W"
taskset -c 0 "$BIN" --config "$W/sf.toml" > "$W/sf.out" 2> "$W/sf.err" & echo $! > "$W/sf.pid"
taskset -c 0 nginx -p "$W/nginx" -c "$W/nginx/nginx.conf"
sleep 1
# Fill slabfront: the miss, then each variant until it is served from the slab.
for ae in gzip br; do
  for _ in $(seq 1 50); do
    if curl -sk --http2 -H "Accept-Encoding: $ae" -D - -o /dev/null \
        "https://127.0.0.1:19543/simple.html" | grep -qi "detail=$ae-stored"; then
      break
    fi
    sleep 0.1
  done
done
cpu() { # utime+stime of a process and its children, in clock ticks
  local t=0
  for p in "$@" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat")))
  done
  echo $t
}
HZ=$(getconf CLK_TCK)
run() { # name pid port accept-encoding
  local name=$1 pid=$2 port=$3 ae=$4
  local url="https://127.0.0.1:$port/simple.html"
  # A stalled connection is given up after 10 s (h2load counts it as timed out) rather than
  # holding the run.
  local h2="timeout 120 h2load -N 10 -c 16 -m 1 -H Accept-Encoding:$ae"
  taskset -c 1 $h2 -D 2 "$url" >/dev/null 2>&1 || true # warm-up
  local t0; t0=$(cpu "$pid")
  local out; out=$(taskset -c 1 $h2 -D "$SECS" "$url" 2>&1 || true)
  local t1; t1=$(cpu "$pid")
  local reqs; reqs=$(echo "$out" | awk '/^requests:/{print $8}')
  if [ -z "$reqs" ] || [ "$reqs" = 0 ]; then
    echo "| $ae | $name | h2load stalled (killed after 120 s) | | | | | |"
    return
  fi
  local rps; rps=$(echo "$out" | awk '/^finished in/{print $4}')
  local cpus; cpus=$(echo "scale=3; ($t1-$t0)/$HZ" | bc)
  local per; per=$(echo "scale=0; $reqs/$cpus" | bc)
  local bytes; bytes=$(echo "$out" | awk '/^traffic:/{gsub(/[()]/,"",$3); print $3}')
  local each; each=$(echo "scale=0; $bytes/$reqs" | bc)
  local mean; mean=$(echo "$out" | awk '/time for request:/{print $6}')
  local codes; codes=$(echo "$out" | awk '/^status codes:/{print $3" 2xx, "$9" 5xx"}')
  codes="$codes, $(echo "$out" | awk '/^requests:/{print $14" timed out"}')"
  echo "| $ae | $name | $rps | $cpus | $per | $each | $mean | $codes |"
}
SF=$(cat "$W/sf.pid")
NG=$(cat "$W/nginx.pid")
echo "| coding | server | req/s | server CPU-s | req per CPU-s | bytes per response | request time mean | responses |"
echo "|---|---|---|---|---|---|---|---|"
for round in 1 2; do
  run "slabfront (stored variant)" "$SF" 19543 gzip
  run "nginx gzip on (level 1)" "$NG" 19544 gzip
  run "nginx gzip on, level 9" "$NG" 19545 gzip
  run "nginx gzip_static (gzip -9)" "$NG" 19546 gzip
  run "slabfront (stored variant)" "$SF" 19543 br
  if [ -n "$BROTLI" ]; then
    run "nginx brotli on (level 9)" "$NG" 19548 br
    run "nginx brotli_static" "$NG" 19549 br
  fi
done
kill "$(cat "$W/nginx.pid")"
