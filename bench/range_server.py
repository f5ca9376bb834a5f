#!/usr/bin/env python3
"""A small HTTP/1.1 range server for benchmarks (Python stdlib only).

Serves the files under --root (GET and HEAD, keep-alive, one thread per
connection). It imitates an object store seen over a WAN:

* every request waits --delay-ms (default 20 ms) before its response starts
  (time to first byte);
* every response body is throttled to --bandwidth MB/s (default 80 MB/s,
  10^6 bytes) on its connection.

Range support: a single `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` gives
206 with Content-Range; a range starting past the end gives 416 with
`Content-Range: bytes */size`; several ranges in one header are ignored and
the whole file is sent with 200 (as S3 does).

Counters, kept at the server (GET /__stats, JSON; `?reset=1` zeroes them
after reading, `?log=1` adds one entry per request):

* requests      GET and HEAD requests for files (not /__stats).
* bytes_sent    response body bytes.
* waves         sequential rounds of requests: a request starts a new wave
                when it arrives while no other request is in flight. The
                per-request delay (>= 20 ms) keeps every request of a
                concurrent batch in flight until the whole batch has
                arrived, so a batch counts once; a client that waits for
                each answer before asking again counts one wave per request.
* waves_gap     the same, but a new wave also needs --wave-gap-ms (default
                2 ms) of silence since the last request finished. Over
                loopback a fast serial client re-asks within 0.1-1 ms, so
                this merges truly sequential round trips (kerchunk-nos
                re-asked within 1 ms: 16 requests in 10 rounds counted as 1);
                kept for comparison only.
* connections   TCP connections accepted.
* max_in_flight the most requests served at the same time.

Sockets use TCP_NODELAY (no Nagle stall between headers and a small body).

Usage: range_server.py --root DIR [--host 127.0.0.1] [--port 0]
       [--delay-ms 20] [--bandwidth 80] [--wave-gap-ms 2] [--port-file F]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import socketserver
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024


class Counters:
    def __init__(self, gap_s: float):
        self.lock = threading.Lock()
        self.gap = gap_s
        self.reset()

    def reset(self):
        self.requests = 0
        self.bytes_sent = 0
        self.waves = 0
        self.waves_gap = 0
        self.connections = 0
        self.max_in_flight = 0
        self.in_flight = 0
        self.last_finish = float("-inf")
        self.t0 = time.monotonic()
        self.log = []

    def begin(self, method, start, length):
        now = time.monotonic()
        with self.lock:
            self.requests += 1
            if self.in_flight == 0:
                self.waves += 1
                if now - self.last_finish >= self.gap:
                    self.waves_gap += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            entry = {
                "t_ms": round((now - self.t0) * 1000, 2),
                "wave": self.waves,
                "method": method,
                "start": start,
                "length": length,
            }
            self.log.append(entry)
            return entry

    def end(self, entry, sent):
        now = time.monotonic()
        with self.lock:
            self.in_flight -= 1
            self.bytes_sent += sent
            self.last_finish = now
            entry["sent"] = sent
            entry["dur_ms"] = round((now - self.t0) * 1000 - entry["t_ms"], 2)

    def snapshot(self, with_log: bool, reset: bool):
        with self.lock:
            out = {
                "requests": self.requests,
                "bytes_sent": self.bytes_sent,
                "waves": self.waves,
                "waves_gap": self.waves_gap,
                "connections": self.connections,
                "max_in_flight": self.max_in_flight,
            }
            if with_log:
                out["log"] = list(self.log)
            if reset:
                in_flight = self.in_flight
                self.reset()
                self.in_flight = in_flight
            return out


RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int):
    """(start, end_exclusive) | None (whole file) | 'unsatisfiable'."""
    if not header or "," in header:
        return None
    m = RANGE_RE.match(header)
    if not m:
        return None
    a, b = m.group(1), m.group(2)
    if a == "" and b == "":
        return None
    if a == "":  # suffix: last n bytes
        n = int(b)
        if n == 0:
            return "unsatisfiable"
        return max(0, size - n), size
    start = int(a)
    if start >= size:
        return "unsatisfiable"
    end = size if b == "" else min(int(b) + 1, size)
    if end <= start:
        return "unsatisfiable"
    return start, end


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "range-server/1"

    def setup(self):
        super().setup()
        # Without TCP_NODELAY, a small body written after the headers waits
        # for the client's delayed ACK (~40 ms on Linux): Nagle's algorithm.
        # Object stores do not show that stall, so neither should we.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.counters.lock:
            self.server.counters.connections += 1

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head: bool):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__stats":
            q = urllib.parse.parse_qs(url.query)
            body = json.dumps(
                self.server.counters.snapshot(
                    with_log=q.get("log", ["0"])[0] == "1",
                    reset=q.get("reset", ["0"])[0] == "1",
                )
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        rel = urllib.parse.unquote(url.path).lstrip("/")
        root = self.server.root
        path = os.path.realpath(os.path.join(root, rel))
        if not (path == root or path.startswith(root + os.sep)) or not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        rng = parse_range(self.headers.get("Range"), size)
        if rng == "unsatisfiable":
            start, length = None, 0
        elif rng is None:
            start, length = 0, size
        else:
            start, length = rng[0], rng[1] - rng[0]
        counters = self.server.counters
        entry = counters.begin("HEAD" if head else "GET", start, length)
        sent = 0
        try:
            time.sleep(self.server.delay)
            if rng == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if rng is None:
                self.send_response(200)
            else:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{start + length - 1}/{size}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if head:
                return
            bw = self.server.bandwidth
            t_start = time.monotonic()
            with open(path, "rb") as f:
                f.seek(start)
                while sent < length:
                    buf = f.read(min(CHUNK, length - sent))
                    if not buf:
                        break
                    self.wfile.write(buf)
                    sent += len(buf)
                    if bw > 0:
                        ahead = t_start + sent / bw - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            counters.end(entry, sent)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--bandwidth", type=float, default=80.0, help="MB/s (10^6 B/s) per connection; 0 = unlimited")
    ap.add_argument("--wave-gap-ms", type=float, default=2.0)
    ap.add_argument("--port-file", help="write the bound port here once listening")
    a = ap.parse_args()
    srv = Server((a.host, a.port), Handler)
    srv.root = os.path.realpath(a.root)
    srv.delay = a.delay_ms / 1000.0
    srv.bandwidth = a.bandwidth * 1e6
    srv.counters = Counters(a.wave_gap_ms / 1000.0)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, a.port_file)
    print(f"serving {srv.root} on http://{a.host}:{port} delay={a.delay_ms}ms bw={a.bandwidth}MB/s", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    socketserver.TCPServer.allow_reuse_address = True
    main()
