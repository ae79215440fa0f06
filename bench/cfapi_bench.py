"""The CloudFront API's benchmark (issue 26, point 6), with real boto3 and wrk.

1. Time from CreateDistribution to Deployed (GetDistribution polled every 5 ms), p50/p99
   over --creates distributions.
2. Hit requests per server CPU-second on one distribution (wrk, 1 KiB cached object) while
   quiet, and while another distribution is created and updated in a loop through the API;
   the runs alternate (quiet, busy, quiet, busy, ...) and the medians are compared.

slabfront runs with one worker pinned to core 0 (taskset), wrk and the API client on core 1.
Server CPU is utime+stime of the slabfront process from /proc over each run (so it includes
the admin listener and the deploy thread: the loop's whole cost counts). Every process this
script starts is stopped by its PID.

Usage: python3 bench/cfapi_bench.py --binary target/release/slabfront [--creates 100]
       [--runs 3] [--seconds 10]
"""

import argparse
import http.server
import os
import re
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3

KEY = ("AKIDSLABFRONTBENCH", "bench-secret-not-secret")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def origin(root):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=root, **k)

        def end_headers(self):
            self.send_header("Cache-Control", "max-age=3600")
            super().end_headers()

        def log_message(self, *a):
            pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def config(tmp, origin_port):
    return f"""[server]
listen = ["127.0.0.1:0"]
workers = 1
[cache]
path = "{tmp}/slab"
size = "256MiB"
[admin]
listen = "127.0.0.1:0"
state_dir = "{tmp}/api"
distribution_domain = "edge.bench"
[[admin.access_keys]]
id = "{KEY[0]}"
secret = "{KEY[1]}"
[[distributions]]
name = "bench.example"
[[distributions.origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {origin_port}
protocol = "http-only"
[distributions.default_cache_behavior]
target_origin = "app"
"""


def dist_config(ref, port, comment=""):
    return {
        "CallerReference": ref, "Comment": comment, "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "app", "DomainName": "127.0.0.1",
            "CustomOriginConfig": {"HTTPPort": port, "HTTPSPort": 443,
                                   "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    }


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def wrk(port, seconds):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds}s",
                          "-H", "Host: bench.example", f"http://127.0.0.1:{port}/1k.bin"],
                         capture_output=True, text=True, check=True).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return n, int(errors.group(1)) if errors else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/slabfront")
    ap.add_argument("--creates", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cfapi-bench-")
    root = os.path.join(tmp, "www")
    os.makedirs(root)
    with open(os.path.join(root, "1k.bin"), "wb") as f:
        f.write(bytes(i % 251 for i in range(1024)))
    org = origin(root)
    oport = org.server_address[1]
    with open(os.path.join(tmp, "slabfront.toml"), "w") as f:
        f.write(config(tmp, oport))
    server = subprocess.Popen(["taskset", "-c", "0", args.binary, "--config", f"{tmp}/slabfront.toml"],
                              stdout=subprocess.PIPE, stderr=open(f"{tmp}/stderr.log", "w"),
                              env=dict(os.environ, RUST_LOG="warn"), text=True)
    try:
        edge = int(server.stdout.readline().strip().rstrip("/").rsplit(":", 1)[1])
        admin = int(server.stdout.readline().strip().rstrip("/").rsplit(":", 1)[1])
        cf = boto3.client("cloudfront", endpoint_url=f"http://127.0.0.1:{admin}", region_name="us-east-1",
                          aws_access_key_id=KEY[0], aws_secret_access_key=KEY[1])
        # 1. CreateDistribution → Deployed.
        times = []
        for i in range(args.creates):
            t0 = time.perf_counter()
            did = cf.create_distribution(DistributionConfig=dist_config(f"deploy-{i}", oport))["Distribution"]["Id"]
            while cf.get_distribution(Id=did)["Distribution"]["Status"] != "Deployed":
                time.sleep(0.005)
            times.append(time.perf_counter() - t0)
        print(f"CreateDistribution → Deployed over {len(times)} (with {args.creates} distributions at the end): "
              f"p50 {percentile(times, 50) * 1000:.0f} ms, p99 {percentile(times, 99) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms", flush=True)
        # 2. Hits per CPU-second, quiet and beside a create/update loop.
        wrk(edge, 2)
        stop = threading.Event()
        loops = [0]

        def churn():
            n = 0
            while not stop.is_set():
                d = cf.create_distribution(DistributionConfig=dist_config(f"churn-{time.time()}-{n}", oport))
                did, etag = d["Distribution"]["Id"], d["ETag"]
                dc = cf.get_distribution_config(Id=did)["DistributionConfig"]
                dc["Comment"] = f"update {n}"
                cf.update_distribution(Id=did, IfMatch=etag, DistributionConfig=dc)
                n += 1
                loops[0] = n

        rows = {"quiet": [], "busy": []}
        for r in range(args.runs):
            for mode in ("quiet", "busy"):
                if mode == "busy":
                    stop.clear()
                    t = threading.Thread(target=churn)
                    t.start()
                c0 = cpu_seconds(server.pid)
                n, errors = wrk(edge, args.seconds)
                c1 = cpu_seconds(server.pid)
                if mode == "busy":
                    stop.set()
                    t.join()
                rows[mode].append(n / (c1 - c0))
                print(f"run {r + 1} {mode}: {n} hits, {errors} errors, server CPU {c1 - c0:.2f} s, "
                      f"{n / (c1 - c0):.0f} hits per CPU-s"
                      + (f", {loops[0]} create+update rounds" if mode == "busy" else ""), flush=True)
        q, b = statistics.median(rows["quiet"]), statistics.median(rows["busy"])
        print(f"median hits per CPU-s: quiet {q:.0f}, beside the create/update loop {b:.0f} "
              f"({(b / q - 1) * 100:+.1f}%)")
    finally:
        server.terminate()
        server.wait(timeout=30)
        org.shutdown()


if __name__ == "__main__":
    sys.exit(main())
