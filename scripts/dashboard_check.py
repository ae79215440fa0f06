#!/usr/bin/env python3
"""The admin dashboard in a real browser (headless Chromium through chromedriver).

Starts slabfront (a caching proxy in front of an origin run here, an admin listener with a
token), logs in through the page's form, drives load, and checks that the numbers on the page
move while it runs and then match /metrics exactly. Saves a screenshot.

Usage: dashboard_check.py SLABFRONT_BINARY [--screenshot FILE]
Run by scripts/dashboard-test.sh (which installs Chromium, chromedriver and selenium).
"""

import argparse
import http.client
import http.server
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

TOKEN = "dash-Token+with/odd;chars"


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/missing"):
            body, status = b"no such thing\n", 404
        else:
            size = 4096 if path.endswith(".bin") else 512
            body, status = (path.encode() * (size // max(len(path), 1) + 1))[:size], 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def admin_get(port, path, token=TOKEN):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(port):
    status, text = admin_get(port, "/metrics")
    assert status == 200, (status, text)
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def load(port, stop, counts):
    """Keep-alive GETs: one hot URL most of the time, a few others, some 404s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = 0
    while not stop.is_set():
        n += 1
        if n % 10 == 0:
            path = f"/file{n % 7}.bin"
        elif n % 25 == 0:
            path = "/missing"
        else:
            path = "/hot.txt"
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        counts[r.status // 100] = counts.get(r.status // 100, 0) + 1
        time.sleep(0.001)
    conn.close()


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def wait_for(what, f, timeout=15.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = f()
            if last:
                return last
        except Exception as e:  # the page may be between two renders
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


def result_cell(driver, result):
    for row in driver.find_elements(By.CSS_SELECTOR, "#results tr"):
        cells = [c.text.strip() for c in row.find_elements(By.TAG_NAME, "td")]
        if cells and cells[0] == result:
            return cells
    raise AssertionError(f"no row for {result}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--screenshot")
    args = ap.parse_args()

    origin = ThreadingServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="slabfront-dash-")
    cfg = os.path.join(work, "slabfront.toml")
    with open(cfg, "w") as f:
        f.write(f"""[server]
listen = ["127.0.0.1:0"]
workers = 2

[[origins]]
id = "origin"
domain_name = "127.0.0.1"
http_port = {origin.server_address[1]}
protocol = "http-only"

[default_cache_behavior]
target_origin = "origin"

[admin]
listen = "127.0.0.1:0"
token = {json.dumps(TOKEN)}

[cache]
path = "{work}/slab"
size = "64MiB"
""")
    server = subprocess.Popen(
        [args.binary, "--config", cfg],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(work, "stderr.log"), "w"),
        text=True,
    )
    driver = None
    try:
        port = admin = None
        while admin is None:
            line = server.stdout.readline()
            if not line:
                raise AssertionError("slabfront exited: " + open(os.path.join(work, "stderr.log")).read())
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
            m = re.search(r"admin on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                admin = int(m.group(1))
        base = f"http://127.0.0.1:{admin}"

        # The token rule: nothing without it, JSON with it.
        assert admin_get(admin, "/stats", token=None)[0] == 401
        assert admin_get(admin, "/stats", token="wrong")[0] == 401
        status, body = admin_get(admin, "/stats")
        assert status == 200, (status, body)
        assert json.loads(body)["distributions"][0]["name"] == "default"

        opts = webdriver.ChromeOptions()
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1400,1250", "--force-device-scale-factor=1"]:
            opts.add_argument(a)
        opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        driver = webdriver.Chrome(
            service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts
        )
        driver.set_page_load_timeout(30)

        # Log in once through the form; the token is then kept in the cookie.
        driver.get(base + "/")
        field = driver.find_element(By.NAME, "token")
        field.send_keys("not-the-token")
        field.submit()
        wait_for("the refusal", lambda: "not valid" in driver.page_source)
        driver.find_element(By.NAME, "token").send_keys(TOKEN)
        driver.find_element(By.NAME, "token").submit()
        wait_for("the live page", lambda: text(driver, "state") == "live")
        cookie = driver.get_cookie("slabfront_admin")
        assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
        assert driver.execute_script("return document.cookie") == "", "the cookie is readable from script"

        # Load, and the numbers move while it runs.
        stop, counts = threading.Event(), {}
        workers = [threading.Thread(target=load, args=(port, stop, counts)) for _ in range(2)]
        for w in workers:
            w.start()
        try:
            first = int(wait_for("requests", lambda: int(text(driver, "total-requests")) > 0 and text(driver, "total-requests")))
            time.sleep(3)
            second = int(text(driver, "total-requests"))
            assert second > first, (first, second)
            wait_for("a request rate", lambda: float(text(driver, "rps").split()[0]) > 0)
            req = urllib.request.Request(base + "/invalidations", data=b'{"paths": ["/file1.bin"]}', method="POST")
            req.add_header("Authorization", f"Bearer {TOKEN}")
            req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=10) as r:
                inv_id = json.loads(r.read())["id"]
            time.sleep(4)
        finally:
            stop.set()
            for w in workers:
                w.join()
        served = sum(counts.values())

        # Then the page agrees with /metrics (and with what the client counted).
        def settled():
            m = metrics(admin)
            total = sum(v for k, v in m.items() if k.startswith("slabfront_requests_total{"))
            page_total = int(text(driver, "total-requests"))
            hits = result_cell(driver, "Hit")
            want_hits = m['slabfront_requests_by_cache_result_total{result="Hit"}']
            return (page_total == total == served and int(hits[2]) == want_hits
                    and (page_total, total, int(hits[2]), want_hits))
        matched = wait_for("the page to match /metrics", settled)
        print(f"page and /metrics agree: {matched[0]} requests, {matched[2]} hits")
        status_2xx = [r for r in driver.find_elements(By.CSS_SELECTOR, "#status tr")
                      if r.find_element(By.TAG_NAME, "td").text == "2xx"][0]
        m = metrics(admin)
        assert int(status_2xx.find_elements(By.TAG_NAME, "td")[2].text) == m['slabfront_requests_total{status_class="2xx"}']
        assert text(driver, "hit-ratio").endswith("%")
        assert text(driver, "p50").endswith("ms") and text(driver, "p99").endswith("ms")
        top = driver.find_elements(By.CSS_SELECTOR, "#top-requests tr td")
        assert top and top[0].text == "/hot.txt", [t.text for t in top[:3]]
        assert driver.find_elements(By.CSS_SELECTOR, "#top-bytes tr")
        origins = driver.find_elements(By.CSS_SELECTOR, "#origins tr td")
        assert origins[0].text == "origin", [o.text for o in origins]
        wait_for("the invalidation", lambda: inv_id in driver.find_element(By.ID, "invalidations").text)
        assert "Completed" in driver.find_element(By.ID, "invalidations").text
        assert text(driver, "slab-objects") not in ("", "-", "0")
        # Nothing was loaded from anywhere but the admin listener.
        entries = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert entries and all(e.startswith(base + "/") for e in entries), entries
        # The charts have points.
        drawn = driver.execute_script(
            "const c = document.getElementById('chart-rps'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
            "for (let i = 0; i < d.length; i += 4) if (d[i+2] > 200 && d[i] < 120) n++; return n;"
        )
        assert drawn > 20, drawn
        if args.screenshot:
            time.sleep(1.5)
            driver.save_screenshot(args.screenshot)
            print(f"screenshot: {args.screenshot}")
        print("dashboard: 1 passed, 0 failed")
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        origin.shutdown()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"dashboard check failed: {e}", file=sys.stderr)
        print("dashboard: 0 passed, 1 failed")
        sys.exit(1)
