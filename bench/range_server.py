#!/usr/bin/env python3
"""A small HTTP/1.1 range server for benchmarks (Python stdlib only).

Serves the files under --root (GET and HEAD, keep-alive, one asyncio event
loop for every connection, so concurrent requests are served concurrently). It imitates an object store seen over a WAN:

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
import asyncio
import json
import os
import re
import socket
import threading
import time
import urllib.parse

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


REASONS = {200: "OK", 206: "Partial Content", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 416: "Range Not Satisfiable"}


class Server:
    """One asyncio event loop serves every connection.

    The first version used ThreadingHTTPServer (a thread per connection).
    With 64 concurrent requests, 64 threads woke from their 20 ms delay at
    once and queued for the GIL (5 ms switch interval), so a wave of 64
    small requests took 40-70 ms instead of ~22 ms: the server, not the
    client, set the pace. A single event loop has no GIL hand-offs; a wave of
    64 costs the delay plus ~5 ms of Python work, like a real object store
    that serves concurrent requests in parallel.
    """

    def __init__(self, root, delay, bandwidth, counters):
        self.root = root
        self.delay = delay
        self.bandwidth = bandwidth
        self.counters = counters
        self.fds = {}

    def fd(self, path):
        f = self.fds.get(path)
        if f is None:
            f = self.fds[path] = os.open(path, os.O_RDONLY)
        return f

    async def handle(self, reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Without TCP_NODELAY a small body written after the headers
            # waits for the client's delayed ACK (~40 ms, Nagle); object
            # stores do not show that stall.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.counters.lock:
            self.counters.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                parts = line.decode("latin-1").split()
                if len(parts) < 2:
                    return
                method, target = parts[0], parts[1]
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0") or 0)
                if n:
                    await reader.readexactly(n)
                keep = await self.serve(method, target, headers, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def head(self, status, fields):
        out = [f"HTTP/1.1 {status} {REASONS.get(status, '')}", "Server: range-server/2"]
        out += [f"{k}: {v}" for k, v in fields]
        return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")

    async def serve(self, method, target, headers, writer) -> bool:
        url = urllib.parse.urlsplit(target)
        is_head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            writer.write(self.head(405, [("Content-Length", "0")]))
            await writer.drain()
            return True
        if url.path == "/__stats":
            q = urllib.parse.parse_qs(url.query)
            body = json.dumps(
                self.counters.snapshot(
                    with_log=q.get("log", ["0"])[0] == "1",
                    reset=q.get("reset", ["0"])[0] == "1",
                )
            ).encode()
            writer.write(self.head(200, [("Content-Type", "application/json"), ("Content-Length", len(body))]))
            if not is_head:
                writer.write(body)
            await writer.drain()
            return True
        rel = urllib.parse.unquote(url.path).lstrip("/")
        path = os.path.realpath(os.path.join(self.root, rel))
        if not (path == self.root or path.startswith(self.root + os.sep)) or not os.path.isfile(path):
            writer.write(self.head(404, [("Content-Length", "0")]))
            await writer.drain()
            return True
        size = os.path.getsize(path)
        rng = parse_range(headers.get("range"), size)
        if rng == "unsatisfiable":
            start, length = None, 0
        elif rng is None:
            start, length = 0, size
        else:
            start, length = rng[0], rng[1] - rng[0]
        entry = self.counters.begin("HEAD" if is_head else "GET", start, length)
        sent = 0
        try:
            await asyncio.sleep(self.delay)
            if rng == "unsatisfiable":
                writer.write(self.head(416, [("Content-Range", f"bytes */{size}"), ("Content-Length", "0")]))
                await writer.drain()
                return True
            fields = []
            status = 200
            if rng is not None:
                status = 206
                fields.append(("Content-Range", f"bytes {start}-{start + length - 1}/{size}"))
            fields += [("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream"),
                       ("Content-Length", length)]
            writer.write(self.head(status, fields))
            if is_head:
                await writer.drain()
                return True
            fd = self.fd(path)
            bw = self.bandwidth
            t_start = time.monotonic()
            while sent < length:
                buf = os.pread(fd, min(CHUNK, length - sent), start + sent)
                if not buf:
                    break
                # Pace before writing: a piece leaves when the bandwidth
                # allows it. (Sleeping after the last piece kept a finished
                # response "in flight" for up to a piece's time, so a
                # client's next wave arriving then was counted as the
                # same wave.)
                if bw > 0:
                    ahead = t_start + (sent + len(buf)) / bw - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                writer.write(buf)
                sent += len(buf)
                await writer.drain()
            await writer.drain()
            return True
        finally:
            self.counters.end(entry, sent)


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
    srv = Server(os.path.realpath(a.root), a.delay_ms / 1000.0, a.bandwidth * 1e6, Counters(a.wave_gap_ms / 1000.0))

    async def serve():
        server = await asyncio.start_server(srv.handle, a.host, a.port, backlog=256, reuse_address=True)
        port = server.sockets[0].getsockname()[1]
        if a.port_file:
            tmp = a.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(port))
            os.replace(tmp, a.port_file)
        print(f"serving {srv.root} on http://{a.host}:{port} delay={a.delay_ms}ms bw={a.bandwidth}MB/s", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
