#!/usr/bin/env python3
"""The fleet test's driver (scripts/fleet-test.sh): starts etcd, a counting origin, two
shields, three edges and HAProxy, all on loopback and stopped by PID, then measures and
asserts what docs/fleet.md promises. Usage: fleet_check.py SLABFRONT_BIN HAPROXY_CFG"""

import collections
import http.client
import http.server
import json
import os
import random
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN, HAPROXY_CFG = sys.argv[1], sys.argv[2]
WORK = tempfile.mkdtemp(prefix="slabfront-fleet-")
ETCD = 23790
ORIGIN = ("127.0.0.2", 18000)
SHIELDS = [("shield-1", "127.0.0.11"), ("shield-2", "127.0.0.12")]
EDGES = [("edge-1", "127.0.0.21"), ("edge-2", "127.0.0.22"), ("edge-3", "127.0.0.23")]
LB = ("127.0.0.1", 8088)
procs = {}
fetches = collections.Counter()
lock = threading.Lock()


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with lock:
            fetches[self.path] += 1
        body = ("object %s\n" % self.path).encode() * 8
        self.send_response(200)
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def start(name, argv, log):
    procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def stop(name, sig=signal.SIGTERM):
    p = procs.pop(name, None)
    if p and p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_port(host, port, secs=30):
    import socket
    t = time.time() + secs
    while time.time() < t:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on %s:%d" % (host, port))


def node(name, ip, parents):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    par = ""
    if parents:
        par = "parents = [%s]" % ", ".join('"%s:8080"' % p for p in parents)
    cfg = f"""
[server]
listen = ["{ip}:8080"]
workers = 1
drain_delay = "2s"
[cluster]
etcd = ["http://127.0.0.1:{ETCD}"]
node_name = "{name}"
lease_ttl = "3s"
[admin]
listen = "{ip}:9090"
[cache]
path = "{d}/slab"
size = "64MiB"
[[origins]]
id = "app"
domain_name = "{ORIGIN[0]}"
http_port = {ORIGIN[1]}
protocol = "http-only"
connection_attempts = 1
connection_timeout = "1s"
{par}
[default_cache_behavior]
target_origin = "app"
"""
    path = os.path.join(d, "slabfront.toml")
    open(path, "w").write(cfg)
    start(name, [BIN, "--config", path], os.path.join(d, "stderr.log"))
    wait_port(ip, 8080)
    wait_port(ip, 9090)


def get(host, port, path, conn=None):
    c = conn or http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", path, headers={"Host": "fleet.example"})
    r = c.getresponse()
    body = r.read()
    return r.status, dict(r.getheaders()), body


def admin(ip, method, path, body=None):
    c = http.client.HTTPConnection(ip, 9090, timeout=10)
    c.request(method, path, body=json.dumps(body) if body else None)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def zipf_paths(n_objects, n_requests, s=1.1, seed=7):
    rnd = random.Random(seed)
    weights = [1 / (k ** s) for k in range(1, n_objects + 1)]
    return ["/z/%d" % k for k in rnd.choices(range(n_objects), weights, k=n_requests)]


def load(paths, threads=16):
    """GETs through HAProxy; returns (ok, failed) counts."""
    ok = failed = 0
    it = iter(paths)
    m = threading.Lock()

    def run():
        nonlocal ok, failed
        conn = http.client.HTTPConnection(*LB, timeout=10)
        while True:
            with m:
                p = next(it, None)
            if p is None:
                return
            try:
                st, _, _ = get(*LB, p, conn)
                good = st == 200
            except Exception:
                good = False
                conn = http.client.HTTPConnection(*LB, timeout=10)
            with m:
                ok += good
                failed += not good

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return ok, failed


results_so_far = []


def main():
    results = results_so_far
    srv = Server(ORIGIN, Origin)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    start("etcd", ["etcd", "--name", "f", "--data-dir", os.path.join(WORK, "etcd"),
                   f"--listen-client-urls=http://127.0.0.1:{ETCD}",
                   f"--advertise-client-urls=http://127.0.0.1:{ETCD}",
                   "--listen-peer-urls=http://127.0.0.1:23800",
                   "--initial-advertise-peer-urls=http://127.0.0.1:23800",
                   "--initial-cluster=f=http://127.0.0.1:23800"], os.path.join(WORK, "etcd.log"))
    wait_port("127.0.0.1", ETCD)
    for name, ip in SHIELDS:
        node(name, ip, [])
    for name, ip in EDGES:
        node(name, ip, [ip for _, ip in SHIELDS])
    start("haproxy", ["haproxy", "-db", "-f", HAPROXY_CFG], os.path.join(WORK, "haproxy.log"))
    wait_port(*LB)
    time.sleep(1.5)  # the first health checks

    # 1. Zipf load: one origin fetch per distinct object for the whole fleet.
    paths = zipf_paths(500, 6000)
    t0 = time.time()
    ok, failed = load(paths)
    secs = time.time() - t0
    distinct = len(set(paths))
    per_object = max(fetches[p] for p in set(paths))
    total = sum(fetches[p] for p in set(paths))
    assert failed == 0, failed
    assert total == distinct and per_object == 1, (total, distinct)
    results.append(("Zipf load, 6,000 requests over 500 objects (%d distinct), 3 edges, 2 shields"
                    % distinct, "origin fetches per object: %.2f (max %d); %.0f req/s"
                    % (total / distinct, per_object, ok / secs)))

    # 2. Invalidation fan-out: POST on one edge, Completed (every live node acked).
    lat = []
    for i in range(100):
        edge_ip = EDGES[i % 3][1]
        t0 = time.time()
        st, v = admin(edge_ip, "POST", "/invalidations", {"paths": ["/z/%d" % i]})
        assert st == 201, (st, v)
        while True:
            st, w = admin(edge_ip, "GET", "/invalidations/" + v["id"])
            if w.get("status") == "Completed":
                break
            time.sleep(0.002)
        lat.append((time.time() - t0) * 1000)
    lat.sort()
    results.append(("invalidation fan-out, 100 invalidations, 5 nodes",
                    "p50 %.1f ms, p99 %.1f ms" % (lat[49], lat[98])))

    # 3. An edge killed by SIGKILL mid-load.
    killer = threading.Timer(1.0, lambda: stop("edge-2", signal.SIGKILL))
    killer.start()
    ok, failed = load(zipf_paths(500, 6000, seed=8))
    killer.join()
    time.sleep(1.5)
    ok2, failed2 = load(zipf_paths(500, 3000, seed=9))
    assert failed2 == 0, failed2
    results.append(("edge-2 killed (SIGKILL) mid-load, HAProxy checks every 500 ms",
                    "%d failed of %d during; %d failed of %d after the check interval"
                    % (failed, ok + failed, failed2, ok2 + failed2)))

    # 4. A shield killed: its keys move to the other one, fetched from the origin once more
    # each; the other shield's keys cost nothing. A fresh edge (nothing cached) asks for them.
    objs = ["/s/%d" % k for k in range(200)]
    ok, failed = load(objs)
    counts = collections.Counter(fetches[p] for p in objs)
    assert failed == 0 and set(counts) == {1}, (failed, counts)
    stop("shield-1", signal.SIGKILL)
    node("edge-4", "127.0.0.24", [ip for _, ip in SHIELDS])
    failed = 0
    conn = http.client.HTTPConnection("127.0.0.24", 8080, timeout=10)
    for p in objs:
        st, _, _ = get("127.0.0.24", 8080, p, conn)
        failed += st != 200
    again = [fetches[p] - 1 for p in objs]
    assert failed == 0 and max(again) <= 1, (failed, max(again))
    results.append(("shield-1 killed; a fresh edge asks for 200 objects cached before",
                    "%d failed; %d fetched from the origin once more (shield-1's share), "
                    "%d from shield-2's cache" % (failed, sum(again), len(objs) - sum(again))))

    # 5. etcd stopped: serving goes on, invalidations answer 503.
    stop("etcd", signal.SIGKILL)
    time.sleep(0.5)
    st, v = admin(EDGES[0][1], "POST", "/invalidations", {"paths": ["/z/1"]})
    ok, failed = load(zipf_paths(500, 1000, seed=11))
    assert st == 503 and "etcd" in json.dumps(v), (st, v)
    assert failed == 0, failed
    results.append(("etcd stopped", "POST /invalidations: %d (%s); %d of %d requests failed"
                    % (st, v.get("error", "")[:60], failed, ok + failed)))

    report(results)


def report(results):
    print("| scenario | result |\n|---|---|")
    for a, b in results:
        print("| %s | %s |" % (a, b))


try:
    main()
except AssertionError:
    report(results_so_far)
    raise
finally:
    for name in list(procs):
        stop(name, signal.SIGKILL)
