"""HTTP/2 viewers that misbehave, for server/tests/http2.rs, built on PyPI's h2 (its state
machine, HPACK and frame types): each subcommand runs one scenario against an h2c listener and
prints one JSON object with what the server did."""

import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
from hyperframe.frame import ContinuationFrame, HeadersFrame, PingFrame


ERRORS = []


def connect(port, settings=None, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    if settings:
        c.update_settings(settings)
    s.sendall(c.data_to_send())
    return s, c


def req(path, extra=()):
    return [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "localhost")] + list(extra)


def pump(s, c, until, deadline, on_event=None):
    """Reads events until `until()` is true, the deadline passes or the server closes."""
    closed = False
    while not until() and time.time() < deadline:
        try:
            s.settimeout(max(0.01, deadline - time.time()))
            data = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        try:
            events = c.receive_data(data)
        except Exception as e:  # a frame h2 refuses after the server's GOAWAY
            ERRORS.append(repr(e))
            closed = True
            break
        for ev in events:
            on_event and on_event(ev)
        out = c.data_to_send()
        if out:
            try:
                s.sendall(out)
            except OSError:
                closed = True
                break
    return closed


def settings(port):
    s, c = connect(port)
    got = {}

    def on(ev):
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                got[int(k)] = v.new_value

    pump(s, c, lambda: bool(got), time.time() + 5, on)
    window = []

    def on_window(ev):
        if isinstance(ev, h2.events.WindowUpdated) and ev.stream_id == 0:
            window.append(ev.delta)

    pump(s, c, lambda: bool(window), time.time() + 1, on_window)
    print(json.dumps({"settings": got, "connection_window_update": sum(window)}))


def multiplex(port, big, small, n):
    """A large download read slowly (the stream's window is never opened past its first
    64 KiB per read) while `n` small requests go on the same connection."""
    s, c = connect(port)
    big_id = c.get_next_available_stream_id()
    c.send_headers(big_id, req(big), end_stream=True)
    s.sendall(c.data_to_send())
    state = {"big": 0, "small_done": 0, "small_bytes": 0, "small_ids": set(), "resets": 0}
    t0 = time.time()

    def on(ev):
        if isinstance(ev, h2.events.DataReceived):
            if ev.stream_id == big_id:
                state["big"] += len(ev.data)
                # Connection window only: the big stream stays throttled by its own window.
                c.increment_flow_control_window(len(ev.data))
            else:
                state["small_bytes"] += len(ev.data)
                c.acknowledge_received_data(len(ev.data), ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in state["small_ids"]:
            state["small_done"] += 1
        elif isinstance(ev, h2.events.StreamReset):
            state["resets"] += 1

    for _ in range(n):
        sid = c.get_next_available_stream_id()
        state["small_ids"].add(sid)
        c.send_headers(sid, req(small), end_stream=True)
    s.sendall(c.data_to_send())
    pump(s, c, lambda: state["small_done"] == n, time.time() + 20, on)
    small_secs = time.time() - t0
    # Then the big one, slowly: a window of 1 MiB at a time, 20 times.
    for _ in range(20):
        if c.streams.get(big_id) is None or c.streams[big_id].closed:
            break
        c.increment_flow_control_window(1 << 20, big_id)
        s.sendall(c.data_to_send())
        target = state["big"] + (1 << 20)
        pump(s, c, lambda: state["big"] >= target, time.time() + 5, on)
        time.sleep(0.05)
    print(json.dumps({"small_done": state["small_done"], "small_bytes": state["small_bytes"],
                      "small_secs": small_secs, "big_bytes": state["big"], "resets": state["resets"]}))


def concurrency(port, big, n):
    """Opens `n` stalled downloads at once: those beyond the server's limit are refused."""
    s, c = connect(port, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    got = {"ok": 0, "refused": 0, "codes": []}
    pump(s, c, lambda: c.remote_settings.max_concurrent_streams < 2**31, time.time() + 3)
    c.remote_settings  # noqa
    # Bypass the client's own limit: it would otherwise queue rather than send.
    c.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 10**6
    c.remote_settings.acknowledge()
    for _ in range(n):
        c.send_headers(c.get_next_available_stream_id(), req(big), end_stream=True)
    s.sendall(c.data_to_send())

    def on(ev):
        if isinstance(ev, h2.events.ResponseReceived):
            got["ok"] += 1
        elif isinstance(ev, h2.events.StreamReset):
            got["refused"] += 1
            got["codes"].append(int(ev.error_code))

    pump(s, c, lambda: got["ok"] + got["refused"] >= n, time.time() + 5, on)
    print(json.dumps(got))


def rapid_reset(port, path, n):
    """Opens and cancels streams as fast as possible (CVE-2023-44487)."""
    s, c = connect(port)
    pump(s, c, lambda: False, time.time() + 0.3)
    sent = 0
    goaway = {}
    closed = False
    for i in range(n):
        try:
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, req(path), end_stream=True)
            c.reset_stream(sid)
            s.sendall(c.data_to_send())
            sent += 1
        except Exception:
            closed = True
            break
        if i % 50 == 49:
            # Let the server's answers and resets be read (as a real attacker's client would).
            s.setblocking(False)
            try:
                data = s.recv(1 << 20)
                if not data:
                    closed = True
                    break
                for ev in c.receive_data(data):
                    if isinstance(ev, h2.events.ConnectionTerminated):
                        goaway = {"code": int(ev.error_code), "last_stream": ev.last_stream_id}
            except BlockingIOError:
                pass
            except Exception:
                closed = True
                break
            finally:
                s.setblocking(True)
            if goaway:
                break

    def on(ev):
        if isinstance(ev, h2.events.ConnectionTerminated):
            goaway.update({"code": int(ev.error_code), "last_stream": ev.last_stream_id})

    if not goaway:
        closed = pump(s, c, lambda: bool(goaway), time.time() + 3, on) or closed
    print(json.dumps({"sent": sent, "goaway": goaway, "closed": closed}))


def continuation(port, frames):
    """A HEADERS frame without END_HEADERS, then CONTINUATION frames that never end (2024)."""
    s, c = connect(port)
    pump(s, c, lambda: False, time.time() + 0.3)
    enc = hpack.Encoder()
    block = enc.encode(req("/1k.bin"))
    h = HeadersFrame(1)
    h.data = block
    h.flags.add("END_STREAM")
    s.sendall(h.serialize())
    sent = 0
    closed = False
    junk = hpack.Encoder().encode([("x-junk-%d" % i, "v" * 200) for i in range(60)])
    for _ in range(frames):
        f = ContinuationFrame(1)
        f.data = junk
        try:
            s.sendall(f.serialize())
            sent += 1
        except OSError:
            closed = True
            break
    s.settimeout(5)
    goaway = {}
    try:
        while True:
            data = s.recv(65536)
            if not data:
                closed = True
                break
            try:
                for ev in c.receive_data(data):
                    if isinstance(ev, h2.events.ConnectionTerminated):
                        goaway = {"code": int(ev.error_code)}
            except Exception:
                pass
    except (socket.timeout, OSError):
        closed = closed or not goaway
    print(json.dumps({"sent": sent, "frame_bytes": len(junk), "goaway": goaway, "closed": closed or bool(goaway)}))


def ping_flood(port, n):
    """PING frames without reading a single answer."""
    s, c = connect(port)
    s.settimeout(3)
    sent = 0
    blob = b"".join(PingFrame(0, opaque_data=(i % 2**63).to_bytes(8, "big")).serialize() for i in range(1000))
    for _ in range(n // 1000):
        try:
            s.sendall(blob)
            sent += 1000
        except (socket.timeout, OSError):
            break
    print(json.dumps({"sent": sent}))
    sys.stdout.flush()
    time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 0)


def zero_window(port, big):
    """A viewer that never opens its window: the stream is reset after the send timeout."""
    s, c = connect(port, {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, req(big), end_stream=True)
    s.sendall(c.data_to_send())
    t0 = time.time()
    got = {}

    def on(ev):
        if isinstance(ev, h2.events.ResponseReceived):
            got["status"] = dict(ev.headers).get(b":status", b"").decode()
        elif isinstance(ev, h2.events.StreamReset):
            got["reset"] = int(ev.error_code)
            got["after"] = time.time() - t0

    pump(s, c, lambda: "reset" in got, time.time() + 15, on)
    print(json.dumps(got))


def big_header(port, size):
    s, c = connect(port)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, req("/1k.bin", [("x-big", "a" * size)]), end_stream=True)
    s.sendall(c.data_to_send())
    got = {}

    def on(ev):
        if isinstance(ev, h2.events.ResponseReceived):
            got["status"] = dict(ev.headers).get(b":status", b"").decode()
        elif isinstance(ev, h2.events.StreamReset):
            got["reset"] = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            got["goaway"] = int(ev.error_code)

    closed = pump(s, c, lambda: bool(got), time.time() + 5, on)
    got["closed"] = closed
    print(json.dumps(got))


def hpack_bomb(port, table):
    """Makes the server's decoder keep a dynamic table larger than it allows."""
    s, c = connect(port)
    pump(s, c, lambda: False, time.time() + 0.3)
    c.encoder.header_table_size = table
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, req("/1k.bin", [("x-fill", "b" * 4000)]), end_stream=True)
    s.sendall(c.data_to_send())
    got = {}

    def on(ev):
        if isinstance(ev, h2.events.ResponseReceived):
            got["status"] = dict(ev.headers).get(b":status", b"").decode()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            got["goaway"] = int(ev.error_code)

    got["closed"] = pump(s, c, lambda: bool(got), time.time() + 5, on)
    print(json.dumps(got))


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    args = sys.argv[3:]
    {
        "settings": lambda: settings(port),
        "multiplex": lambda: multiplex(port, args[0], args[1], int(args[2])),
        "concurrency": lambda: concurrency(port, args[0], int(args[1])),
        "rapid_reset": lambda: rapid_reset(port, args[0], int(args[1])),
        "continuation": lambda: continuation(port, int(args[0])),
        "ping_flood": lambda: ping_flood(port, int(args[0])),
        "zero_window": lambda: zero_window(port, args[0]),
        "big_header": lambda: big_header(port, int(args[0])),
        "hpack_bomb": lambda: hpack_bomb(port, int(args[0])),
    }[cmd]()
